// Where a webhook event's time goes: the webhook part's "new manifest" and "duplicate" runs at 8
// in flight on SQLite alone (or PostgreSQL with BENCH_WEBHOOK_STORE=postgres), small, for a CPU
// profile:
//
//   node --cpu-prof --cpu-prof-dir=DIR --import tsx bench/catalog/webhook-profile.ts
//
// --cpu-prof writes one profile per thread (the main thread and each SQLite connection thread).
// The timed window is printed as process.hrtime microseconds (the clock of the profiles'
// startTime and timeDeltas), so the samples of the registry fill can be left out. Each run also
// says what the registry and the database server spent per event beside this process: on a
// machine of few cores, the sum is what bounds the rate. Sizes: BENCH_CATALOG_EVENTS (default
// 300). Writes no results file.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../../src/catalog/open.js';
import { EVENTS_MEDIA_TYPE } from '../../src/catalog/events.js';
import { nodeHttpClient } from '../../src/net/node-http.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { createApp } from '../../src/server/app.js';
import { makeTempDir, removeTempDir } from '../../test/helpers/cleanup.js';
import { type PostgresCluster, createDatabase, startPostgres } from '../../test/helpers/postgres.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { fmt } from '../lib.js';
import { T0, now, pool } from './common.js';
import { cpuSpent, postmasterPid } from './cpu.js';
import { type RegistryImage, fillRegistry, uploadBlobs } from './registry.js';
import { WEBHOOK_CONCURRENCY, WEBHOOK_EVENTS, WEBHOOK_SECRET } from './settings.js';
import { baselineRun, baselineWriter, envelope } from './webhook.js';

const dialect = process.env.BENCH_WEBHOOK_STORE === 'postgres' ? 'postgres' : 'sqlite';
/** This process's CPU time (every thread) per event since `from`: steadier than a rate on a loaded machine. */
const cpuPerEvent = (from: NodeJS.CpuUsage, events: number): string => {
  const used = process.cpuUsage(from);
  return `${fmt((used.user + used.system) / 1000 / events, 2)} ms CPU per event in this process`;
};
/** CPU ms of each thread of this process (Linux), by thread id and name: which thread the CPU time per event goes to. */
function threadTimes(): Map<string, number> {
  const out = new Map<string, number>();
  const tick = 1000 / 100;
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(`${tid} ${name}`, (Number(fields[11]) + Number(fields[12])) * tick);
    }
  } catch {
    // Not Linux: no split.
  }
  return out;
}
const threadSplit = (from: Map<string, number>, events: number): string =>
  [...threadTimes()]
    .map(([k, v]) => [k, (v - (from.get(k) ?? 0)) / events] as const)
    .filter(([, v]) => v >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k.startsWith(`${process.pid} `) ? 'main' : `thread ${k.split(' ')[0]}`} ${fmt(v, 2)}`)
    .join(', ');
const micros = (): string => String(process.hrtime.bigint() / 1000n);

const work = await makeTempDir('bench-webhook-profile');
const registry = await startRegistry({ logLevel: 'warn' });
let cluster: PostgresCluster | undefined;
try {
  const images: RegistryImage[] = [];
  await fillRegistry(`http://${registry.directHost}`, await uploadBlobs(`http://${registry.directHost}`), 0, 2 * WEBHOOK_EVENTS, images);
  let url = `sqlite:${join(work, 'webhook.db')}`;
  if (dialect === 'postgres') {
    cluster = await startPostgres();
    url = await createDatabase(cluster, 'webhook_profile');
  }
  const postmaster = postmasterPid(cluster);
  const outside = () => cpuSpent(registry.pid, postmaster);
  /** What the registry and the database server spent beside this process, per event: on 2 cores, the whole of each event's CPU is what bounds the rate. */
  const outsideSplit = (spent: ReturnType<typeof outside>, events: number): string => {
    const { registryMs, databaseMs } = spent();
    return `registry ${fmt(registryMs / events, 2)} ms${!cluster ? '' : databaseMs === undefined ? ', PostgreSQL not read (no postmaster.pid)' : `, PostgreSQL ${fmt(databaseMs / events, 2)} ms`}`;
  };
  const store = await openStore(url);
  try {
    // As serve builds it: registry requests over node:http (commands/common.ts registryClient).
    const client = new RegistryClient({ fetch: globalThis.fetch, http: nodeHttpClient(process.env), credentials: () => undefined });
    const app = createApp({ store, webhook: { secret: WEBHOOK_SECRET, client, registry: registry.host, concurrency: WEBHOOK_CONCURRENCY } });
    const post = async (body: string): Promise<void> => {
      const res = await app.request('/api/v1/events', { method: 'POST', headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': EVENTS_MEDIA_TYPE }, body });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${text}`);
    };
    // Warm-up on manifests of its own, as many and as many at once as the timed runs: the code is compiled by then (as in the webhook part, where the timed runs one at a time come first).
    const warm = images.slice(WEBHOOK_EVENTS);
    await pool(warm.length, WEBHOOK_CONCURRENCY, (k) => post(envelope(warm[k] as RegistryImage, registry.host, T0)));
    const bodies = images.slice(0, WEBHOOK_EVENTS).map((img, k) => envelope(img, registry.host, T0 + k * 1000));
    // The bench's baseline (a GET and a one-row transaction per event) on manifests of its own, for its profile.
    const writer = await baselineWriter(dialect, dialect === 'sqlite' ? join(work, 'baseline.db') : url);
    try {
      const from = micros();
      const cpu = process.cpuUsage();
      const threads = threadTimes();
      const beside = outside();
      const run = await baselineRun(dialect, writer, registry.host, images.slice(0, WEBHOOK_EVENTS), WEBHOOK_CONCURRENCY);
      process.stdout.write(`${dialect} baseline ×${WEBHOOK_CONCURRENCY}: ${fmt(run.eventsPerSecond, 0)} events/s, ${cpuPerEvent(cpu, WEBHOOK_EVENTS)} [${threadSplit(threads, WEBHOOK_EVENTS)}]; ${outsideSplit(beside, WEBHOOK_EVENTS)} (window ${from}..${micros()} µs)\n`);
    } finally {
      await writer.close();
    }
    for (const scenario of ['new manifest', 'duplicate']) {
      const from = micros();
      const cpu = process.cpuUsage();
      const threads = threadTimes();
      const beside = outside();
      const started = now();
      await pool(bodies.length, WEBHOOK_CONCURRENCY, (k) => post(bodies[k] as string));
      const ms = now() - started;
      process.stdout.write(`${dialect} ${scenario} ×${WEBHOOK_CONCURRENCY}: ${fmt(bodies.length / (ms / 1000), 0)} events/s, ${cpuPerEvent(cpu, bodies.length)} [${threadSplit(threads, bodies.length)}]; ${outsideSplit(beside, bodies.length)} (window ${from}..${micros()} µs)\n`);
    }
  } finally {
    await store.close();
  }
} finally {
  await registry.stop();
  await cluster?.stop();
  await removeTempDir(work);
}
