// Load on `tagtrail serve` (the built CLI, a child process, over a real loopback socket), on
// SQLite and PostgreSQL: webhook pushes and API queries at once, at a fixed concurrency each, for
// a fixed time. The events name tags really in a real registry (CNCF distribution): 1,600 tags in
// 4 repositories, 200 distinct manifests (each under 8 tags), PUT over the registry's HTTP API
// before the run. Webhook workers walk the tags in order (each event a tag push with a fresh
// timestamp; once every tag was sent, they start over, so later events repeat earlier ones).
// Query workers cycle through search by commit, by pipeline, by repository, and the repository
// list. Reported: requests/s of each kind, p50/p99 latency, errors (any status but 200), and
// whether every tag pushed is searchable afterwards through /api/v1/images.
//
// BENCH_SERVE_SECONDS=N sets the time per backend (default 10, at most 20).
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { removeTempDir, makeTempDir } from '../test/helpers/cleanup.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { startRegistry } from '../test/helpers/registry.js';
import { mountBlobs, pushBase, putVariant, type Variants } from '../test/helpers/variants.js';
import { ciAnnotations, hex } from '../test/catalog/seed.js';
import { ensureBuilt, startServe } from '../test/server/serve-process.js';
import { fmt, percentile, writeResults } from './lib.js';

const SECONDS = Math.min(20, Math.max(1, Number(process.env.BENCH_SERVE_SECONDS ?? 10)));
const REPOS = 4;
const MANIFESTS_PER_REPO = 50;
const TAGS_PER_MANIFEST = 8;
const WEBHOOK_WORKERS = 8;
const QUERY_WORKERS = 8;
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

interface BackendResult {
  backend: string;
  /** The machine's 1-minute load average when the run started. */
  loadAverage: number;
  seconds: number;
  webhook: KindStats;
  query: KindStats;
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

async function runOne(backend: string, db: string, registryHost: string, pushed: Pushed[]): Promise<BackendResult> {
  const serve = await startServe([], { TAGTRAIL_LISTEN: '127.0.0.1:0', TAGTRAIL_REGISTRY: registryHost, TAGTRAIL_DB: db, TAGTRAIL_WEBHOOK_SECRET: SECRET, TAGTRAIL_RECONCILE_INTERVAL: '0' });
  const loadAverage = loadavg()[0] ?? NaN;
  const hookLatency: number[] = [];
  const queryLatency: number[] = [];
  let hookErrors = 0;
  let queryErrors = 0;
  const errorSamples: string[] = [];
  const sent = new Set<number>();
  let nextEvent = 0;
  let nextQuery = 0;
  const started = Date.now();
  const deadline = started + SECONDS * 1000;
  const note = (what: string): void => {
    if (errorSamples.length < 10) errorSamples.push(what);
  };
  const timed = async (url: string, init: RequestInit | undefined, into: number[]): Promise<boolean> => {
    const t = process.hrtime.bigint();
    try {
      const res = await fetch(url, init);
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
  const hookWorker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const i = nextEvent++ % pushed.length;
      const ok = await timed(
        `${serve.url}/api/v1/events`,
        { method: 'POST', headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json', authorization: SECRET }, body: envelope(pushed[i] as Pushed) },
        hookLatency,
      );
      if (ok) sent.add(i);
      else hookErrors++;
    }
  };
  const queryWorker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const n = nextQuery++;
      const p = pushed[(n * 7919) % pushed.length] as Pushed;
      const path = [
        `/api/v1/images?commit=${p.commit.slice(0, 12)}`,
        `/api/v1/images?pipeline=${p.pipeline}`,
        `/api/v1/images?repository=${p.repository}&limit=50`,
        '/api/v1/repositories',
      ][n % 4] as string;
      if (!(await timed(`${serve.url}${path}`, undefined, queryLatency))) queryErrors++;
    }
  };
  await Promise.all([...Array.from({ length: WEBHOOK_WORKERS }, hookWorker), ...Array.from({ length: QUERY_WORKERS }, queryWorker)]);
  const seconds = (Date.now() - started) / 1000;

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
  const code = await serve.stop();
  if (code !== 0) note(`serve exited ${String(code)}`);
  return {
    backend,
    loadAverage,
    seconds,
    webhook: stats(hookLatency, hookErrors, seconds),
    query: stats(queryLatency, queryErrors, seconds),
    distinctTagsPushed: sent.size,
    tagsSearchable: sent.size - lost - wrongDigest,
    lost,
    wrongDigest,
    errorSamples,
  };
}

/** A rough guess for `npm run bench` to announce; a full run's measured duration replaces it (bench/results/durations.json). */
export const estimatedSeconds = 90;

export default async function main(): Promise<void> {
  ensureBuilt();
  const registry = await startRegistry({ logLevel: 'warn' });
  const dir = await makeTempDir('serve-load');
  const pgCluster = await startPostgres();
  const results: BackendResult[] = [];
  try {
    const url = `http://${registry.directHost}`;
    const v = await pushBase(registry.directHost, 'load/seed');
    const seeded = Date.now();
    const pushed = await seedTags(url, v);
    const seedSeconds = (Date.now() - seeded) / 1000;
    results.push(await runOne('sqlite', `sqlite:${dir}/catalog.db`, registry.directHost, pushed));
    results.push(await runOne('postgres', pgCluster.url, registry.directHost, pushed));

    const row = (r: BackendResult, kind: 'webhook' | 'query'): string => {
      const s = r[kind];
      return `| ${r.backend} | ${kind === 'webhook' ? 'webhook push (POST /api/v1/events)' : 'API query (GET /api/v1/…)'} | ${kind === 'webhook' ? WEBHOOK_WORKERS : QUERY_WORKERS} | ${s.requests} | ${fmt(s.perSecond, 0)} | ${fmt(s.p50Ms)} | ${fmt(s.p99Ms)} | ${fmt(s.maxMs)} | ${s.errors} |`;
    };
    const md = `# serve under load

\`tagtrail serve\` (the built CLI, a child process, JSON logs at info, reconcile off) on a loopback
socket, against a real registry (CNCF distribution) holding ${pushed.length} tags in ${REPOS}
repositories (${REPOS * MANIFESTS_PER_REPO} distinct manifests, ${TAGS_PER_MANIFEST} tags each; filled in ${fmt(seedSeconds)} s).
For ${SECONDS} s per backend, ${WEBHOOK_WORKERS} webhook workers POST one tag push each at a time
(the tags in order, a fresh timestamp each; once every tag was sent they start over), while
${QUERY_WORKERS} query workers GET search by commit prefix, by pipeline, by repository (limit 50),
and the repository list, in turn. Plain fetch loops in the benchmark process. Each first push of
a manifest has serve read it (and the config, once) from the registry; the 8 tags of a manifest
come one after another, so the workers push tags of the same manifest at the same time.
${cpus().length} cores; 1-minute load average at the start of each run: ${results.map((r) => `${r.backend} ${fmt(r.loadAverage)}`).join(', ')}.

| backend | kind | workers | requests | req/s | p50 ms | p99 ms | max ms | errors |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${results.flatMap((r) => [row(r, 'webhook'), row(r, 'query')]).join('\n')}

Nothing lost: after the run, every tag whose push was answered 200 is looked up through
\`GET /api/v1/images?repository=…\` (all pages).

| backend | distinct tags pushed | searchable on their digest | lost | wrong digest |
| --- | ---: | ---: | ---: | ---: |
${results.map((r) => `| ${r.backend} | ${r.distinctTagsPushed} | ${r.tagsSearchable} | ${r.lost} | ${r.wrongDigest} |`).join('\n')}
${results.some((r) => r.errorSamples.length > 0) ? `\nFirst errors: ${results.flatMap((r) => r.errorSamples.map((e) => `${r.backend}: ${e}`)).join('; ')}\n` : ''}`;
    await writeResults('serve-load', { seconds: SECONDS, tags: pushed.length, repositories: REPOS, manifests: REPOS * MANIFESTS_PER_REPO, webhookWorkers: WEBHOOK_WORKERS, queryWorkers: QUERY_WORKERS, seedSeconds, results }, md);
    const bad = results.filter((r) => r.lost > 0 || r.wrongDigest > 0 || r.webhook.errors > 0 || r.query.errors > 0);
    if (bad.length > 0) throw new Error(`serve-load: errors or lost tags on ${bad.map((r) => r.backend).join(', ')}`);
  } finally {
    await registry.stop();
    await pgCluster.stop();
    await removeTempDir(dir);
  }
}
