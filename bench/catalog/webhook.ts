import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore } from '../../src/catalog/open.js';
import { EVENTS_MEDIA_TYPE } from '../../src/catalog/events.js';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { nodeHttpClient } from '../../src/net/node-http.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { createApp } from '../../src/server/app.js';
import { type PostgresCluster, createDatabase } from '../../test/helpers/postgres.js';
import type { TestRegistry } from '../../test/helpers/registry.js';
import { fmt } from '../lib.js';
import { type Stats, T0, int, load, log, now, passMiss, pool, recordOf, seedManifest, stats } from './common.js';
import type { RegistryImage } from './registry.js';
import { WEBHOOK_CONCURRENCY, WEBHOOK_EVENTS, WEBHOOK_RATIO_GOAL, WEBHOOK_SECRET } from './settings.js';
import { cpuSpent, postmasterPid, totalAndCeilingCells } from './cpu.js';


/** CPU ms per event: this process (every thread), the registry, and the PostgreSQL server (0 for SQLite, which runs in this process). */
interface EventCpu {
  processMs: number;
  registryMs: number;
  /** Absent for SQLite, and where the PostgreSQL server's pid could not be read. */
  databaseMs?: number;
}

interface WebhookRun {
  store: 'sqlite' | 'postgres';
  scenario: 'new manifest' | 'duplicate';
  inFlight: number;
  events: number;
  ms: number;
  eventsPerSecond: number;
  latency: Stats;
  outcomes: Record<string, number>;
  manifestGets: number;
  /** Absent in results written before it was measured. */
  cpu?: EventCpu;
}

/**
 * The baseline of the goal: a plain loop that, per event, GETs the manifest from the registry
 * (through the same counting proxy) and writes one row in one transaction, on the same kind of
 * store: a better-sqlite3 file (WAL, synchronous NORMAL, as the catalog) or a PostgreSQL table.
 */
interface BaselineRun {
  store: 'sqlite' | 'postgres';
  inFlight: number;
  events: number;
  ms: number;
  eventsPerSecond: number;
  latency: Stats;
  /** Absent in results written before it was measured (and in the profile's runs). */
  cpu?: EventCpu;
}

interface BaselineWriter {
  write(img: RegistryImage, at: number, manifest: Buffer): Promise<void>;
  close(): Promise<void>;
}

export async function baselineWriter(dialect: 'sqlite' | 'postgres', where: string): Promise<BaselineWriter> {
  const ddl = 'CREATE TABLE IF NOT EXISTS baseline_events (repository text NOT NULL, tag text NOT NULL, digest text NOT NULL, at bigint NOT NULL, manifest bytea NOT NULL)';
  if (dialect === 'sqlite') {
    const db = new Database(where);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(ddl.replace('bytea', 'blob'));
    const insert = db.prepare('INSERT INTO baseline_events (repository, tag, digest, at, manifest) VALUES (?, ?, ?, ?, ?)');
    const tx = db.transaction((img: RegistryImage, at: number, manifest: Buffer) => insert.run(img.repository, img.tag, img.digest, at, manifest));
    return {
      write: async (img, at, manifest) => {
        tx.immediate(img, at, manifest);
      },
      close: async () => {
        db.close();
      },
    };
  }
  const pool = new pg.Pool({ connectionString: where, max: 10 });
  await pool.query(ddl);
  return {
    write: async (img, at, manifest) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('INSERT INTO baseline_events (repository, tag, digest, at, manifest) VALUES ($1, $2, $3, $4, $5)', [img.repository, img.tag, img.digest, at, manifest]);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

export async function baselineRun(dialect: 'sqlite' | 'postgres', writer: BaselineWriter, host: string, slice: readonly RegistryImage[], inFlight: number): Promise<BaselineRun> {
  const latencies: number[] = [];
  const started = now();
  await pool(slice.length, inFlight, async (k) => {
    const img = slice[k] as RegistryImage;
    const t = now();
    const res = await fetch(`http://${host}/v2/${img.repository}/manifests/${img.digest}`, { headers: { accept: OCI_MANIFEST } });
    const manifest = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`baseline GET ${img.repository}@${img.digest}: ${res.status}`);
    await writer.write(img, T0 + k * 1000, manifest);
    latencies.push(now() - t);
  });
  const ms = now() - started;
  return { store: dialect, inFlight, events: slice.length, ms: Math.round(ms), eventsPerSecond: slice.length / (ms / 1000), latency: stats(latencies) };
}

/**
 * The store alone, no registry nor HTTP: per event a manifest of its own and its tag, one and
 * WEBHOOK_CONCURRENCY at a time, each on a fresh catalog, written as the webhook writes a new
 * manifest (pushTag: both in one transaction) and as two calls (putManifest, then setTag). Shows
 * what the store takes per event, and whether writers of different tags and digests wait for
 * each other: if they did, 8 at a time would be no faster.
 */
type StoreCalls = 'pushTag' | 'putManifest + setTag';

interface StoreOnlyRun {
  store: 'sqlite' | 'postgres';
  /** Absent in results written before pushTag: putManifest + setTag. */
  calls?: StoreCalls;
  inFlight: number;
  events: number;
  eventsPerSecond: number;
}

async function storeOnly(dialect: 'sqlite' | 'postgres', url: string, calls: StoreCalls, inFlight: number, events: number): Promise<StoreOnlyRun> {
  const store = await openStore(url);
  try {
    const started = now();
    await pool(events, inFlight, async (k) => {
      const m = seedManifest(k);
      if (calls === 'pushTag') {
        await store.pushTag({ repository: m.b.repository, tag: m.b.tag, digest: m.digest, at: new Date(m.b.at), manifest: recordOf(m) });
      } else {
        await store.putManifest(recordOf(m));
        await store.setTag(m.b.repository, m.b.tag, m.digest, new Date(m.b.at));
      }
    });
    const run = { store: dialect, calls, inFlight, events, eventsPerSecond: events / ((now() - started) / 1000) };
    log(`webhook store only ${dialect} ${calls} ×${inFlight}: ${fmt(run.eventsPerSecond, 0)} events/s`);
    return run;
  } finally {
    await store.close();
  }
}

export function envelope(img: RegistryImage, host: string, at: number): string {
  return JSON.stringify({
    events: [
      {
        id: randomUUID(),
        timestamp: new Date(at).toISOString().replace('Z', '123456Z'),
        action: 'push',
        target: { mediaType: OCI_MANIFEST, digest: img.digest, size: img.size, length: img.size, repository: img.repository, url: `http://${host}/v2/${img.repository}/manifests/${img.digest}`, tag: img.tag },
        request: { id: randomUUID(), addr: '127.0.0.1:40000', host, method: 'PUT', useragent: 'containers/5.23.1 (github.com/containers/image)' },
        actor: {},
        source: { addr: 'registry:5000', instanceID: randomUUID() },
      },
    ],
  });
}

/** fn's result and the CPU it cost per event, in this process and beside it. */
async function withCpu<T>(events: number, registryPid: number, databasePid: number | undefined, fn: () => Promise<T>): Promise<[T, EventCpu]> {
  const cpu = cpuSpent(registryPid, databasePid);
  const value = await fn();
  const { processMs, registryMs, databaseMs } = cpu();
  return [value, { processMs: processMs / events, registryMs: registryMs / events, ...(databaseMs === undefined ? {} : { databaseMs: databaseMs / events }) }];
}

export async function webhookPart(
  work: string,
  registry: TestRegistry,
  cluster: PostgresCluster | undefined,
  images: RegistryImage[],
): Promise<{ runs: WebhookRun[]; baselines: BaselineRun[]; storeOnly: StoreOnlyRun[]; load: { before: number[]; after: number[] } }> {
  const before = load();
  const runs: WebhookRun[] = [];
  const baselines: BaselineRun[] = [];
  const storeRuns: StoreOnlyRun[] = [];
  const stores: ['sqlite' | 'postgres', string][] = [['sqlite', `sqlite:${join(work, 'webhook.db')}`]];
  if (cluster) stores.push(['postgres', await createDatabase(cluster, 'webhook_bench')]);
  const n = Math.min(WEBHOOK_EVENTS, Math.floor(images.length / 2));
  const postmaster = postmasterPid(cluster);
  for (const [dialect, url] of stores) {
    const databasePid = dialect === 'postgres' ? postmaster : undefined;
    const store = await openStore(url);
    const writer = await baselineWriter(dialect, dialect === 'sqlite' ? join(work, 'webhook-baseline.db') : url);
    try {
      // As serve builds it: registry requests over node:http (commands/common.ts registryClient).
      const client = new RegistryClient({ fetch: globalThis.fetch, http: nodeHttpClient(process.env), credentials: () => undefined });
      const app = createApp({ store, webhook: { secret: WEBHOOK_SECRET, client, registry: registry.host, concurrency: WEBHOOK_CONCURRENCY } });
      // Warm-up: a few events of their own (tags n*2 .. n*2+19), so the first timed request does not pay for start-up.
      const post = async (body: string): Promise<Record<string, number>> => {
        const res = await app.request('/api/v1/events', { method: 'POST', headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': EVENTS_MEDIA_TYPE }, body });
        const json = (await res.json()) as Record<string, number>;
        if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${JSON.stringify(json)}`);
        return json;
      };
      for (const img of images.slice(2 * n, 2 * n + 20)) await post(envelope(img, registry.host, T0));
      for (const [inFlight, slice] of [
        [1, images.slice(0, n)],
        [WEBHOOK_CONCURRENCY, images.slice(n, 2 * n)],
      ] as const) {
        const bodies = slice.map((img, k) => envelope(img, registry.host, T0 + k * 1000));
        // The baseline just before and just after the timed runs, at the same concurrency, on
        // the same manifests; the better of the two counts.
        const baselineOnce = async (): Promise<BaselineRun> => {
          const [run, cpu] = await withCpu(slice.length, registry.pid, databasePid, () => baselineRun(dialect, writer, registry.host, slice, inFlight));
          log(`webhook baseline ${dialect} ×${inFlight}: ${fmt(run.eventsPerSecond, 0)} events/s`);
          return { ...run, cpu };
        };
        const firstBaseline = await baselineOnce();
        for (const scenario of ['new manifest', 'duplicate'] as const) {
          registry.resetRequests();
          const outcomes: Record<string, number> = {};
          const latencies: number[] = [];
          const started = now();
          const [, cpu] = await withCpu(bodies.length, registry.pid, databasePid, () =>
            pool(bodies.length, inFlight, async (k) => {
              const t = now();
              const result = await post(bodies[k] as string);
              latencies.push(now() - t);
              for (const key of ['applied', 'superseded', 'duplicate', 'unreadable']) outcomes[key] = (outcomes[key] ?? 0) + (result[key] ?? 0);
            }),
          );
          const ms = now() - started;
          const run: WebhookRun = {
            store: dialect,
            scenario,
            inFlight,
            events: bodies.length,
            ms: Math.round(ms),
            eventsPerSecond: bodies.length / (ms / 1000),
            latency: stats(latencies),
            outcomes,
            manifestGets: registry.count({ method: 'GET', kind: 'manifest' }),
            cpu,
          };
          runs.push(run);
          log(`webhook ${dialect} ${scenario} ×${inFlight}: ${fmt(run.eventsPerSecond, 0)} events/s, ${run.manifestGets} manifest GETs, ${JSON.stringify(outcomes)}`);
        }
        const secondBaseline = await baselineOnce();
        baselines.push(secondBaseline.eventsPerSecond > firstBaseline.eventsPerSecond ? secondBaseline : firstBaseline);
      }
    } finally {
      await writer.close();
      await store.close();
    }
    for (const calls of ['pushTag', 'putManifest + setTag'] as const) {
      for (const inFlight of [1, WEBHOOK_CONCURRENCY]) {
        const name = `webhook_store_${calls === 'pushTag' ? 'push' : 'two'}_${inFlight}`;
        const where = dialect === 'sqlite' ? `sqlite:${join(work, `${name}.db`)}` : await createDatabase(cluster as PostgresCluster, name);
        storeRuns.push(await storeOnly(dialect, where, calls, inFlight, n));
      }
    }
  }
  return { runs, baselines, storeOnly: storeRuns, load: { before, after: load() } };
}


export function webhookMarkdown(runs: WebhookRun[], baselines: BaselineRun[], storeRuns: StoreOnlyRun[], load?: { before: number[]; after: number[] }): string {
  const storeRows = (['sqlite', 'postgres'] as const).flatMap((dialect) =>
    (['pushTag', 'putManifest + setTag'] as const).flatMap((calls) => {
      const of = (r: StoreOnlyRun): boolean => r.store === dialect && (r.calls ?? 'putManifest + setTag') === calls;
      const one = storeRuns.find((r) => of(r) && r.inFlight === 1);
      const many = storeRuns.find((r) => of(r) && r.inFlight === WEBHOOK_CONCURRENCY);
      if (!one || !many) return [];
      return [`| ${dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'} | ${calls} | ${int(one.events)} | ${fmt(one.eventsPerSecond, 0)} | ${fmt(many.eventsPerSecond, 0)} | **${fmt(many.eventsPerSecond / one.eventsPerSecond, 2)}×** |`];
    }),
  );
  const ratioRows = baselines.map((b) => {
    const ingest = runs.find((r) => r.store === b.store && r.inFlight === b.inFlight && r.scenario === 'new manifest');
    const ratio = ingest ? ingest.eventsPerSecond / b.eventsPerSecond : NaN;
    const goal = b.inFlight === WEBHOOK_CONCURRENCY ? `≥ ${fmt(WEBHOOK_RATIO_GOAL, 1)}×` : 'none (one at a time)';
    const result = b.inFlight === WEBHOOK_CONCURRENCY ? passMiss(ratio >= WEBHOOK_RATIO_GOAL) : '';
    return `| ${b.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} | ${b.inFlight} | ${int(b.events)} | **${fmt(ingest?.eventsPerSecond ?? NaN, 0)}** | ${fmt(ingest?.latency.p50 ?? NaN, 2)} | ${fmt(b.eventsPerSecond, 0)} | ${fmt(b.latency.p50, 2)} | **${fmt(ratio, 2)}×** | ${goal} | ${result} |`;
  });
  const cores = availableParallelism();
  const cpuRow = (what: string, store: 'sqlite' | 'postgres', inFlight: number, rate: number, cpu: EventCpu | undefined): string[] => {
    if (!cpu) return [];
    // A PostgreSQL run whose server's CPU was not read (postmaster.pid) has no total.
    const unread = store === 'postgres' && cpu.databaseMs === undefined;
    const total = cpu.processMs + cpu.registryMs + (cpu.databaseMs ?? 0);
    return [
      `| ${store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} | ${what} | ${inFlight} | ${fmt(cpu.processMs, 2)} | ${fmt(cpu.registryMs, 2)} | ${store === 'sqlite' ? 'in the process' : unread ? 'not read' : fmt(cpu.databaseMs ?? NaN, 2)} | ${totalAndCeilingCells(unread ? undefined : total)} | ${fmt(rate, 0)} |`,
    ];
  };
  const cpuRows = baselines.flatMap((b) => {
    const ingest = runs.find((r) => r.store === b.store && r.inFlight === b.inFlight && r.scenario === 'new manifest');
    return [...cpuRow('baseline', b.store, b.inFlight, b.eventsPerSecond, b.cpu), ...(ingest ? cpuRow('ingest, new manifest', ingest.store, ingest.inFlight, ingest.eventsPerSecond, ingest.cpu) : [])];
  });
  const rows = runs.map((r) => {
    const goal = r.scenario === 'new manifest' ? `one manifest GET per event (${r.events})` : '0 manifest GETs';
    const expected = r.scenario === 'new manifest' ? r.manifestGets === r.events && r.outcomes.applied === r.events : r.manifestGets === 0 && r.outcomes.duplicate === r.events;
    return `| ${r.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} | ${r.scenario} | ${r.inFlight} | ${int(r.events)} | **${fmt(r.eventsPerSecond, 0)}** | ${fmt(r.latency.p50, 2)} | ${fmt(r.latency.p95, 2)} | ${int(r.manifestGets)} | ${Object.entries(r.outcomes).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ')} | ${goal} | ${passMiss(expected)} |`;
  });
  return `## 4. Webhook ingest

\`createApp(...).request('/api/v1/events')\` in process, one tag push per envelope (as distribution sends them), the manifest read
from the real registry through the counting proxy. "new manifest": the registry holds the manifest, the catalog does not yet
(a look-up, a GET, then pushTag: the manifest and the tag in one transaction); "duplicate": the same envelope again (no registry read). One request at a time (distribution's
queue per endpoint) and ${WEBHOOK_CONCURRENCY} at a time.

| store | scenario | in flight | events | events/s | p50 ms | p95 ms | manifest GETs | outcomes | goal | result |
|---|---|---:|---:|---:|---:|---:|---:|---|---|---|
${rows.join('\n')}

The request counts are the checks of these rows. The rate goal is against the baseline below.

### Ingest against the baseline

Goal: on both stores, ingest of new manifests at ${WEBHOOK_CONCURRENCY} in flight at least ${fmt(WEBHOOK_RATIO_GOAL, 1)}× a plain loop at the same
concurrency that, per event, GETs the manifest from the registry (through the same counting proxy) and writes one row in one
transaction: a better-sqlite3 file (WAL, synchronous NORMAL, as the catalog) or a table in the same PostgreSQL database. The
baseline runs on the same manifests just before and just after the timed runs; the faster of the two is the one compared.${
    load ? ` Load average (1, 5, 15 min) ${load.before.join(', ')} before this part, ${load.after.join(', ')} after it.` : ''
  }

| store | in flight | events | ingest events/s | ingest p50 ms | baseline events/s | baseline p50 ms | ratio | goal | result |
|---|---:|---:|---:|---:|---:|---:|---:|---|---|
${ratioRows.join('\n')}
${
    cpuRows.length > 0
      ? `
CPU per event while each run lasted: this process (every thread: the webhook or the baseline loop, SQLite's connection threads,
and the counting proxy in front of the registry, which both pass through), the registry, and the PostgreSQL server (each with the
processes below it, from /proc). The three share this machine's ${cores} cores, so ${cores} × 1,000 ms over the total is the most events a
second a run could reach were CPU all it waited on and the machine its own.

| store | run | in flight | this process ms | registry ms | PostgreSQL ms | total ms | ${cores} cores ÷ total, events/s | measured events/s |
|---|---|---:|---:|---:|---:|---:|---:|---:|
${cpuRows.join('\n')}
`
      : ''
  }
### The store alone

Per event a manifest of its own and its tag (the search part's manifests and tags), written as the webhook writes a new
manifest (\`pushTag\`: both in one transaction) and as two calls (\`putManifest\`, then \`setTag\`), on a fresh catalog, one and
${WEBHOOK_CONCURRENCY} at a time, in this process: no registry, no HTTP, so what the store takes per event without the rest of ingest. Not a proof that writers overlap (one at a time leaves the database idle between events, which
${WEBHOOK_CONCURRENCY} at a time fills even behind one lock); test/catalog/concurrent-writes.test.ts is.

| store | calls per event | events | events/s, 1 at a time | events/s, ${WEBHOOK_CONCURRENCY} at a time | ${WEBHOOK_CONCURRENCY} / 1 |
|---|---|---:|---:|---:|---:|
${storeRows.join('\n')}`;
}

