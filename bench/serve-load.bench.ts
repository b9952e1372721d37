// Is `tagtrail serve` (the built CLI, a child process, over a real loopback socket) still quick to
// answer the API while registry events arrive? Per backend (SQLite, PostgreSQL), in one serve:
//   1. prefill: one tag of every manifest pushed through the webhook (serve reads each manifest
//      and config from a real registry, CNCF distribution);
//   2. idle: 8 query workers (closed loop) for a fixed time, no events: the baseline API p99;
//   3. loaded: the same 8 query workers while tag-push events arrive open loop at a steady rate
//      (100/s: sent on a schedule whatever the answers; a send more than one interval behind its
//      schedule counts as late), walking all 1,600 tags in order with a fresh timestamp each.
// Queries and events use connection pools of their own (as an API client and the registry do):
// with one pool, a query could wait in this process behind events serve is slow to answer.
// The goal: the loaded API p99 is at most 3 times the idle one. Serve's own event-loop delay
// (monitorEventLoopDelay, prom-client's nodejs_eventloop_lag_* gauges at /metrics, which restart
// at every scrape) is read at the start and end of each phase, with serve's own timing of the
// queries (its request duration histogram) and this process's event-loop delay (a lagging
// benchmark adds its lag to every latency it measures). Afterwards every tag whose push was
// answered 200 must be searchable on its digest through /api/v1/images.
//
// BENCH_SERVE_SECONDS=N sets each phase's time (default 10, at most 30); BENCH_SERVE_RATE the
// events per second (default 100); BENCH_SERVE_BACKENDS=sqlite (or postgres) runs one backend;
// BENCH_SERVE_CPU_PROF=DIR has serve write a CPU profile (node --cpu-prof) there.
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Agent, fetch as undiciFetch } from 'undici';
import { removeTempDir, makeTempDir } from '../test/helpers/cleanup.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { startRegistry } from '../test/helpers/registry.js';
import { mountBlobs, pushBase, putVariant, type Variants } from '../test/helpers/variants.js';
import { ciAnnotations, hex } from '../test/catalog/seed.js';
import { ensureBuilt, startServe } from '../test/server/serve-process.js';
import { fmt, loadLine, machineLoad, percentile, writeResults } from './lib.js';

const SECONDS = Math.min(30, Math.max(1, Number(process.env.BENCH_SERVE_SECONDS ?? 10)));
const RATE = Math.min(1000, Math.max(1, Number(process.env.BENCH_SERVE_RATE ?? 100)));
const BACKENDS = (process.env.BENCH_SERVE_BACKENDS ?? 'sqlite,postgres').split(',').filter((b) => b === 'sqlite' || b === 'postgres');
const CPU_PROF = process.env.BENCH_SERVE_CPU_PROF;
const REPOS = 4;
const MANIFESTS_PER_REPO = 50;
const TAGS_PER_MANIFEST = 8;
const PREFILL_WORKERS = 8;
const QUERY_WORKERS = 8;
/** The loaded API p99 may be at most this many times the idle one. */
const GOAL_RATIO = 3;
const SECRET = `load-secret-${hex(16)}`;

interface Pushed {
  repository: string;
  tag: string;
  digest: string;
  commit: string;
  pipeline: string;
}

interface KindStats {
  requests: number;
  errors: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Serve's event-loop delay over one phase, ms (monitorEventLoopDelay through prom-client). */
interface LoopDelay {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface Phase {
  seconds: number;
  load: ReturnType<typeof machineLoad>;
  loadAfter: ReturnType<typeof machineLoad>;
  query: KindStats;
  loopDelay: LoopDelay;
  /** The API p99 by serve's own timing (a bucket bound of its duration histogram, ms). */
  serveP99Ms: number;
  /** The benchmark process's own event-loop delay, ms. */
  benchLoop: { p99Ms: number; maxMs: number };
}

interface LoadedPhase extends Phase {
  events: KindStats & { scheduled: number; late: number; maxLateMs: number };
}

interface BackendResult {
  backend: string;
  prefill: { events: number; seconds: number; errors: number };
  idle: Phase;
  loaded: LoadedPhase;
  /** loaded API p99 / idle API p99 */
  ratio: number;
  met: boolean;
  distinctTagsPushed: number;
  tagsSearchable: number;
  lost: number;
  wrongDigest: number;
  errorSamples: string[];
}

async function seedTags(url: string, v: Variants): Promise<Pushed[]> {
  const out: Pushed[] = [];
  for (let r = 1; r <= REPOS; r++) {
    const repository = `load/r${r}`;
    await mountBlobs(url, v, repository);
    const jobs: (() => Promise<void>)[] = [];
    for (let m = 1; m <= MANIFESTS_PER_REPO; m++) {
      const commit = hex(20);
      const pipeline = String(10_000 * r + m);
      const annotations = ciAnnotations(commit, pipeline, 'main');
      for (let t = 1; t <= TAGS_PER_MANIFEST; t++) {
        jobs.push(async () => {
          const tag = `m${m}-t${t}`;
          const digest = await putVariant(url, v, repository, tag, annotations);
          out.push({ repository, tag, digest, commit, pipeline });
        });
      }
    }
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < jobs.length) await (jobs[next++] as () => Promise<void>)();
    }));
  }
  return out.sort((a, b) => (a.repository + a.tag < b.repository + b.tag ? -1 : 1));
}

function stats(latencies: number[], errors: number, seconds: number): KindStats {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? NaN,
  };
}

function envelope(p: Pushed): string {
  return JSON.stringify({
    events: [
      {
        id: randomUUID(),
        timestamp: new Date().toISOString(),
        action: 'push',
        target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: p.digest, repository: p.repository, tag: p.tag, url: `http://registry/v2/${p.repository}/manifests/${p.digest}` },
        request: { id: randomUUID(), method: 'PUT', useragent: 'bench' },
        source: { addr: 'registry' },
      },
    ],
  });
}

interface Scrape {
  loop: LoopDelay;
  /** Cumulative counts of serve's own timing of GET requests (all API queries here), by bucket bound (s). */
  apiBuckets: Map<number, number>;
}

/** serve's /metrics: the nodejs_eventloop_lag_* gauges in ms (reading them restarts their histogram) and the API's duration buckets. */
async function scrape(base: string): Promise<Scrape> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const gauge = (name: string): number => {
    const m = new RegExp(`^tagtrail_nodejs_eventloop_lag_${name}_seconds(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) * 1000 : NaN;
  };
  const apiBuckets = new Map<number, number>();
  for (const m of text.matchAll(/^tagtrail_http_request_duration_seconds_bucket\{([^}]*)\} ([0-9.e+-]+)$/gm)) {
    const labels = m[1] as string;
    // Every GET but the scrapes is an API query here (serve labels these routes "unmatched").
    if (!labels.includes('method="GET"') || labels.includes('route="/metrics"')) continue;
    const le = /le="([^"]+)"/.exec(labels)?.[1] ?? '+Inf';
    const bound = le === '+Inf' ? Infinity : Number(le);
    apiBuckets.set(bound, (apiBuckets.get(bound) ?? 0) + Number(m[2]));
  }
  return { loop: { p50Ms: gauge('p50'), p99Ms: gauge('p99'), maxMs: gauge('max') }, apiBuckets };
}

/** The bucket bound (ms) under which 99% of the API requests between two scrapes were answered, by serve's own timing. */
function serveP99Ms(before: Scrape, after: Scrape): number {
  const bounds = [...after.apiBuckets.keys()].sort((a, b) => a - b);
  const count = (b: number): number => (after.apiBuckets.get(b) ?? 0) - (before.apiBuckets.get(b) ?? 0);
  const total = count(Infinity);
  const bound = bounds.find((b) => count(b) >= 0.99 * total);
  return bound === undefined || total === 0 ? NaN : bound * 1000;
}

/** This process's own event-loop delay while fn runs, ms: a benchmark that lags adds its lag to every latency it measures. */
async function ownLoopDelay<T>(fn: () => Promise<T>): Promise<{ value: T; p99Ms: number; maxMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  try {
    const value = await fn();
    return { value, p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 };
  } finally {
    h.disable();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function runOne(backend: string, db: string, registryHost: string, pushed: Pushed[]): Promise<BackendResult> {
  const env: Record<string, string> = { TAGTRAIL_LISTEN: '127.0.0.1:0', TAGTRAIL_REGISTRY: registryHost, TAGTRAIL_DB: db, TAGTRAIL_WEBHOOK_SECRET: SECRET, TAGTRAIL_RECONCILE_INTERVAL: '0' };
  const serve = await startServe([], env, 20_000, CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`, `--cpu-prof-name=serve-${backend}.cpuprofile`] : []);
  const errorSamples: string[] = [];
  const sent = new Set<number>();
  const note = (what: string): void => {
    if (errorSamples.length < 10) errorSamples.push(what);
  };
  // Queries and events on connections of their own: a query never waits in this process for a
  // connection that an event (slow while serve has a backlog) holds.
  const queryAgent = new Agent({ connections: QUERY_WORKERS });
  const eventAgent = new Agent();
  const timed = async (url: string, init: RequestInit | undefined, into: number[]): Promise<boolean> => {
    const t = process.hrtime.bigint();
    try {
      const res = await undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher: init?.method === 'POST' ? eventAgent : queryAgent });
      await res.arrayBuffer();
      into.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (res.status !== 200) note(`${init?.method ?? 'GET'} ${url.replace(serve.url, '')}: ${res.status}`);
      return res.status === 200;
    } catch (err) {
      into.push(Number(process.hrtime.bigint() - t) / 1e6);
      note(`${url.replace(serve.url, '')}: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  };
  const push = async (i: number, into: number[]): Promise<boolean> => {
    const ok = await timed(
      `${serve.url}/api/v1/events`,
      { method: 'POST', headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json', authorization: SECRET }, body: envelope(pushed[i] as Pushed) },
      into,
    );
    if (ok) sent.add(i);
    return ok;
  };
  let nextQuery = 0;
  /** 8 query workers in a closed loop until the deadline. */
  const queries = async (deadline: number): Promise<{ latency: number[]; errors: number }> => {
    const latency: number[] = [];
    let errors = 0;
    await Promise.all(Array.from({ length: QUERY_WORKERS }, async () => {
      while (Date.now() < deadline) {
        const n = nextQuery++;
        const p = pushed[(n * 7919) % pushed.length] as Pushed;
        const path = [
          `/api/v1/images?commit=${p.commit.slice(0, 12)}`,
          `/api/v1/images?pipeline=${p.pipeline}`,
          `/api/v1/images?repository=${p.repository}&limit=50`,
          '/api/v1/repositories',
        ][n % 4] as string;
        if (!(await timed(`${serve.url}${path}`, undefined, latency))) errors++;
      }
    }));
    return { latency, errors };
  };

  try {
    // 1. Prefill: the first tag of every manifest, so both phases search the same catalog.
    const firsts = pushed.flatMap((p, i) => (p.tag.endsWith('-t1') ? [i] : []));
    const prefillStarted = Date.now();
    let prefillErrors = 0;
    let nextFirst = 0;
    const prefillLatency: number[] = [];
    await Promise.all(Array.from({ length: PREFILL_WORKERS }, async () => {
      while (nextFirst < firsts.length) if (!(await push(firsts[nextFirst++] as number, prefillLatency))) prefillErrors++;
    }));
    const prefill = { events: firsts.length, seconds: (Date.now() - prefillStarted) / 1000, errors: prefillErrors };
    await sleep(1000);

    // 2. Idle: queries only.
    const idleLoad = machineLoad();
    const idleStart = await scrape(serve.url);
    let started = Date.now();
    const idleRun = await ownLoopDelay(() => queries(started + SECONDS * 1000));
    const idleSeconds = (Date.now() - started) / 1000;
    const idleEnd = await scrape(serve.url);
    const idle: Phase = {
      seconds: idleSeconds,
      load: idleLoad,
      loadAfter: machineLoad(),
      query: stats(idleRun.value.latency, idleRun.value.errors, idleSeconds),
      loopDelay: idleEnd.loop,
      serveP99Ms: serveP99Ms(idleStart, idleEnd),
      benchLoop: { p99Ms: idleRun.p99Ms, maxMs: idleRun.maxMs },
    };

    // 3. Loaded: the same queries while events arrive on a schedule (open loop).
    const loadedLoad = machineLoad();
    const loadedStart = await scrape(serve.url);
    started = Date.now();
    const deadline = started + SECONDS * 1000;
    const interval = 1000 / RATE;
    const eventLatency: number[] = [];
    const inFlight: Promise<void>[] = [];
    let eventErrors = 0;
    let late = 0;
    let maxLateMs = 0;
    let scheduled = 0;
    const sender = (async (): Promise<void> => {
      for (let n = 0; ; n++) {
        const due = started + n * interval;
        if (due >= deadline) break;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        const behind = Date.now() - due;
        if (behind > interval) late++;
        maxLateMs = Math.max(maxLateMs, behind);
        scheduled++;
        inFlight.push(push(n % pushed.length, eventLatency).then((ok) => {
          if (!ok) eventErrors++;
        }));
      }
    })();
    const loadedRun = await ownLoopDelay(async () => {
      const result = await queries(deadline);
      await sender;
      return result;
    });
    const loadedQueries = loadedRun.value;
    const loadedSeconds = (Date.now() - started) / 1000;
    const loadedEnd = await scrape(serve.url);
    await Promise.all(inFlight);
    const loaded: LoadedPhase = {
      seconds: loadedSeconds,
      load: loadedLoad,
      loadAfter: machineLoad(),
      query: stats(loadedQueries.latency, loadedQueries.errors, loadedSeconds),
      loopDelay: loadedEnd.loop,
      serveP99Ms: serveP99Ms(loadedStart, loadedEnd),
      benchLoop: { p99Ms: loadedRun.p99Ms, maxMs: loadedRun.maxMs },
      events: { ...stats(eventLatency, eventErrors, loadedSeconds), scheduled, late, maxLateMs },
    };

    // Nothing lost: every tag whose push was answered 200 is searchable, on its digest.
    const found = new Map<string, string>();
    for (let r = 1; r <= REPOS; r++) {
      let cursor: string | undefined;
      do {
        const res = await fetch(`${serve.url}/api/v1/images?repository=load/r${r}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        const page = (await res.json()) as { items: { repository: string; tag: string; digest: string }[]; nextCursor?: string };
        for (const item of page.items) found.set(`${item.repository}:${item.tag}`, item.digest);
        cursor = page.nextCursor;
      } while (cursor !== undefined);
    }
    let lost = 0;
    let wrongDigest = 0;
    for (const i of sent) {
      const p = pushed[i] as Pushed;
      const d = found.get(`${p.repository}:${p.tag}`);
      if (d === undefined) lost++;
      else if (d !== p.digest) wrongDigest++;
    }
    const ratio = loaded.query.p99Ms / idle.query.p99Ms;
    return {
      backend,
      prefill,
      idle,
      loaded,
      ratio,
      met: ratio <= GOAL_RATIO,
      distinctTagsPushed: sent.size,
      tagsSearchable: sent.size - lost - wrongDigest,
      lost,
      wrongDigest,
      errorSamples,
    };
  } finally {
    await Promise.all([queryAgent.close(), eventAgent.close()]);
    const code = await serve.stop();
    if (code !== 0) note(`serve exited ${String(code)}`);
  }
}

/** A rough guess for `npm run bench` to announce; a full run's measured duration replaces it (bench/results/durations.json). */
export const estimatedSeconds = 90;

export default async function main(): Promise<void> {
  ensureBuilt();
  const registry = await startRegistry({ logLevel: 'warn' });
  const dir = await makeTempDir('serve-load');
  const pgCluster = BACKENDS.includes('postgres') ? await startPostgres() : undefined;
  const results: BackendResult[] = [];
  try {
    const url = `http://${registry.directHost}`;
    const v = await pushBase(registry.directHost, 'load/seed');
    const seeded = Date.now();
    const pushed = await seedTags(url, v);
    const seedSeconds = (Date.now() - seeded) / 1000;
    const before = machineLoad();
    for (const backend of BACKENDS) results.push(await runOne(backend, backend === 'sqlite' ? `sqlite:${dir}/catalog.db` : (pgCluster?.url as string), registry.directHost, pushed));
    const after = machineLoad();

    const q = (s: KindStats): string => `${fmt(s.p50Ms)} | ${fmt(s.p99Ms)} | ${fmt(s.maxMs)} | ${s.requests} | ${s.errors}`;
    const d = (l: LoopDelay): string => `${fmt(l.p50Ms)} | ${fmt(l.p99Ms)} | ${fmt(l.maxMs)}`;
    const md = `# serve under load

\`tagtrail serve\` (the built CLI, a child process, JSON logs at info, reconcile off) on a loopback
socket, against a real registry (CNCF distribution) holding ${pushed.length} tags in ${REPOS}
repositories (${REPOS * MANIFESTS_PER_REPO} distinct manifests, ${TAGS_PER_MANIFEST} tags each; filled in ${fmt(seedSeconds)} s).
Per backend, one serve: a prefill (the first tag of every manifest pushed through the webhook by
${PREFILL_WORKERS} workers; serve reads each manifest and its config from the registry), then
**idle**: ${QUERY_WORKERS} query workers (closed loop: GET search by commit prefix, by pipeline, by
repository (limit 50), and the repository list, in turn) for ${SECONDS} s with no events; then
**loaded**: the same ${QUERY_WORKERS} query workers for ${SECONDS} s while tag-push events arrive open loop at
${RATE}/s (one envelope per POST on a fixed schedule whatever the answers, walking all the tags in
order with a fresh timestamp each; a send more than ${fmt(1000 / RATE, 0)} ms behind its schedule counts as late).
Goal: the loaded API p99 at most ${GOAL_RATIO}× the idle one, in the same run. Event-loop delay:
serve's monitorEventLoopDelay (prom-client's \`nodejs_eventloop_lag_*\` at /metrics, 10 ms
resolution, restarted at each scrape) over each phase; serve's own timing of the queries is the bucket of its
\`tagtrail_http_request_duration_seconds\` histogram under which 99% of them fell. Plain fetch loops in the
benchmark process, queries and events on connection pools of their own (8 connections for the queries).

${loadLine(before, after)}

| backend | phase | API p50 ms | API p99 ms | API max ms | requests | errors | serve's loop delay p50 ms | p99 ms | max ms | API p99 by serve's timing, ms (≤ bucket) | benchmark's own loop delay p99 / max ms | 1-min load at start |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${results.flatMap((r) => [
  `| ${r.backend} | idle | ${q(r.idle.query)} | ${d(r.idle.loopDelay)} | ${fmt(r.idle.serveP99Ms, 0)} | ${fmt(r.idle.benchLoop.p99Ms)} / ${fmt(r.idle.benchLoop.maxMs)} | ${fmt(r.idle.load.loadavg[0])} |`,
  `| ${r.backend} | loaded (${RATE} events/s) | ${q(r.loaded.query)} | ${d(r.loaded.loopDelay)} | ${fmt(r.loaded.serveP99Ms, 0)} | ${fmt(r.loaded.benchLoop.p99Ms)} / ${fmt(r.loaded.benchLoop.maxMs)} | ${fmt(r.loaded.load.loadavg[0])} |`,
]).join('\n')}

| backend | loaded/idle API p99 | goal ≤ ${GOAL_RATIO}× | events sent | late sends (max ms behind) | event p50 ms | event p99 ms | event errors | prefill (${REPOS * MANIFESTS_PER_REPO} events) |
| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |
${results.map((r) => `| ${r.backend} | ${fmt(r.ratio, 2)} | ${r.met ? 'met' : '**missed**'} | ${r.loaded.events.scheduled} | ${r.loaded.events.late} (${fmt(r.loaded.events.maxLateMs, 0)}) | ${fmt(r.loaded.events.p50Ms)} | ${fmt(r.loaded.events.p99Ms)} | ${r.loaded.events.errors} | ${fmt(r.prefill.seconds)} s |`).join('\n')}

Nothing lost: after the run, every tag whose push was answered 200 is looked up through
\`GET /api/v1/images?repository=…\` (all pages).

| backend | distinct tags pushed | searchable on their digest | lost | wrong digest |
| --- | ---: | ---: | ---: | ---: |
${results.map((r) => `| ${r.backend} | ${r.distinctTagsPushed} | ${r.tagsSearchable} | ${r.lost} | ${r.wrongDigest} |`).join('\n')}
${results.some((r) => r.errorSamples.length > 0) ? `\nFirst errors: ${results.flatMap((r) => r.errorSamples.map((e) => `${r.backend}: ${e}`)).join('; ')}\n` : ''}`;
    const name = BACKENDS.length === 2 && RATE === 100 && SECONDS === 10 ? 'serve-load' : `serve-load-${BACKENDS.join('-')}-${RATE}-${SECONDS}s`;
    await writeResults(name, { seconds: SECONDS, rate: RATE, goalRatio: GOAL_RATIO, tags: pushed.length, repositories: REPOS, manifests: REPOS * MANIFESTS_PER_REPO, queryWorkers: QUERY_WORKERS, seedSeconds, before, after, results }, md);
    const bad = results.filter((r) => r.lost > 0 || r.wrongDigest > 0 || r.prefill.errors > 0 || r.loaded.events.errors > 0 || r.idle.query.errors > 0 || r.loaded.query.errors > 0);
    if (bad.length > 0) throw new Error(`serve-load: errors or lost tags on ${bad.map((r) => r.backend).join(', ')}`);
  } finally {
    await registry.stop();
    await pgCluster?.stop();
    await removeTempDir(dir);
  }
}
