// The catalog: the goals of the catalog issue, measured against same-run baselines.
//
//  1. sync throughput over 10,000 tags in a real registry (CNCF distribution behind the counting
//     proxy), first sync into a fresh catalog and a second sync of the unchanged registry, on
//     SQLite and PostgreSQL; baseline: a plain fetch loop of HEAD (and HEAD+GET) requests with the
//     same concurrency, from a process of its own as sync is.
//  2. resident memory of `tagtrail sync` (the built CLI, a child process) as the registry grows
//     from 2,500 to 5,000 to 10,000 tags: peak RSS per size and its ratio, with the live V8 heap;
//     controls: the same into PostgreSQL, 10,000 tags in small repositories, and the whole
//     registry (20,000 tags).
//  3. search latency at 1,000,000 indexed manifests on SQLite and PostgreSQL (annotation
//     key=value, commit prefix, pipeline id), with the query plans and where the time goes;
//     baseline: SELECT 1 through the same store driver. The catalogs are filled by a bulk seeder
//     writing the stores' own tables, checked row for row against putManifest + setTag first.
//  4. webhook ingest: events/s through createApp(...).request('/api/v1/events'), for tag pushes
//     of manifests the registry holds (each read from it once) and for duplicates (no read);
//     baseline: a plain loop at the same concurrency that GETs each manifest and writes one row
//     in one transaction on the same kind of store; goal: ingest at 8 in flight ≥ 0.7× it.
//
// The registry is filled over its HTTP API (two blobs per repository, then 10,000 small OCI
// manifests PUT by tag, 16 at a time): skopeo would take far longer. Everything listens on
// 127.0.0.1. `npm run bench` builds the CLI first; with `node --import tsx bench/run.ts catalog`,
// run `npm run build` before.
//
// Each part lives in catalog/ (sync.ts for parts 1 and 2, search.ts, webhook.ts; the bulk seeders
// of part 3 in catalog/seed/, the child programs in catalog/programs/). Which parts run:
// `npm run bench -- catalog:search` (or catalog:sync,webhook), or BENCH_CATALOG_PARTS=search;
// default sync,search,webhook. `memory` (instead of sync) runs part 2 alone and short: first syncs
// at a quarter of the largest size and at the largest, on SQLite and PostgreSQL, without the
// throughput runs, the baseline loops and the controls.
// `insights` (not in the default) times the insights report against a full recount in the same
// run (catalog/insights.ts) on the search part's catalog: seeded for it alone, or, with `search`
// in the same run (catalog:insights,search), the search part's own before its searches (one seed).
//
// Sizes, for shorter runs: BENCH_CATALOG_TAGS=N (the largest sync size; default 10,000),
// BENCH_CATALOG_MANIFESTS=N (the search size; default 1,000,000), BENCH_CATALOG_QUERIES=N (timed
// searches per kind; default 500), BENCH_CATALOG_EVENTS=N (webhook events per run; default 1,000).
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { makeTempDir, removeTempDir } from '../test/helpers/cleanup.js';
import { type PostgresCluster, startPostgres } from '../test/helpers/postgres.js';
import { type TestRegistry, startRegistry } from '../test/helpers/registry.js';
import { fmt, writeResults } from './lib.js';
import { load, now } from './catalog/common.js';
import { type RegistryImage, fillRegistry, uploadBlobs } from './catalog/registry.js';
import { type InsightsPart, insightsPart, insightsPartMarkdown, measureInsights } from './catalog/insights.js';
import { searchMarkdown, searchPart } from './catalog/search.js';
import { MEMORY_ONLY, PARTS, WEBHOOK_EVENTS } from './catalog/settings.js';
import { type SyncPart, memoryMarkdown, syncMarkdown, syncPart } from './catalog/sync.js';
import { webhookMarkdown, webhookPart } from './catalog/webhook.js';

/** A rough guess for `npm run bench` to announce; a full run's measured duration replaces it (bench/results/durations.json). */
export const estimatedSeconds = 1800;

export default async function bench(): Promise<void> {
  const startedAll = now();
  if (!existsSync(new URL('../dist/cli.js', import.meta.url))) throw new Error('the CLI is not built: run npm run build (npm run bench does)');
  const work = await makeTempDir('bench-catalog');
  const loadAtStart = load();
  const seconds: Record<string, number> = {};
  let registry: TestRegistry | undefined;
  let cluster: PostgresCluster | undefined;
  let sync: SyncPart | undefined;
  let webhook: Awaited<ReturnType<typeof webhookPart>> | undefined;
  let search: Awaited<ReturnType<typeof searchPart>> | undefined;
  let insightsRun: InsightsPart | undefined;
  try {
    cluster = await startPostgres();
    if (PARTS.has('sync') || PARTS.has('memory') || PARTS.has('webhook')) {
      registry = await startRegistry({ logLevel: 'warn' });
      const images: RegistryImage[] = [];
      if (PARTS.has('sync') || PARTS.has('memory')) {
        const t = now();
        const running = registry;
        sync = await syncPart(work, running, cluster, images).catch((err: Error) => {
          // A registry that stopped answering says why in its own log.
          throw new Error(`${err.message}\nthe registry's last lines:\n${running.log().slice(-15).join('\n')}`, { cause: err });
        });
        seconds.sync = (now() - t) / 1000;
      } else {
        await fillRegistry(`http://${registry.directHost}`, await uploadBlobs(`http://${registry.directHost}`), 0, 2 * WEBHOOK_EVENTS + 20, images);
      }
      if (PARTS.has('webhook')) {
        const t = now();
        webhook = await webhookPart(work, registry, cluster, images);
        seconds.webhook = (now() - t) / 1000;
      }
      await registry.stop();
      registry = undefined;
    }
    if (PARTS.has('insights') && !PARTS.has('search')) {
      const t = now();
      insightsRun = await insightsPart(work, cluster);
      seconds.insights = (now() - t) / 1000;
    }
    if (PARTS.has('search')) {
      const t = now();
      // With the insights part, its reports are measured on the search part's catalog, before the searches: one seed.
      const insightStores: InsightsPart['stores'] = [];
      let insightsSeconds = 0;
      const alsoInsights = PARTS.has('insights')
        ? async (dialect: 'sqlite' | 'postgres', url: string, seeded: { manifests: number }) => {
            const i = now();
            insightStores.push(await measureInsights(dialect, url, seeded.manifests));
            insightsSeconds += (now() - i) / 1000;
          }
        : undefined;
      search = await searchPart(work, cluster, alsoInsights);
      if (alsoInsights) {
        insightsRun = { seeded: search.seeded, stores: insightStores };
        seconds.insights = insightsSeconds;
      }
      seconds.search = (now() - t) / 1000 - insightsSeconds;
    }
  } finally {
    await registry?.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    await removeTempDir(work);
  }
  seconds.total = (now() - startedAll) / 1000;
  const loadAtEnd = load();

  const runs = { sync, search, insights: insightsRun, webhook };
  // A run of some parts only is written beside the full run's results, never over them. The
  // insights part, run with the search part on its catalog, still gets a file of its own.
  const full = ['sync', 'search', 'webhook'].every((p) => PARTS.has(p));
  const apart = insightsRun !== undefined && search !== undefined && !full;
  const groups: string[][] = apart ? [['insights'], [...PARTS].filter((p) => p !== 'insights')] : [[...PARTS]];
  for (const group of groups) {
    const has = (part: string): boolean => group.includes(part);
    const name = full ? 'catalog' : `catalog-${[...group].sort().join('-')}`;
    const md = catalogMarkdown({ ...runs, search: has('search') ? search : undefined, insights: has('insights') ? insightsRun : undefined }, seconds, loadAtStart, loadAtEnd, apart);
    await writeResults(name, { cpus: cpus().length, loadAverage: { start: loadAtStart, end: loadAtEnd }, seconds, sync, search: has('search') ? search : undefined, insights: has('insights') ? insightsRun : undefined, webhook }, md);
  }
}

interface CatalogRuns {
  sync: SyncPart | undefined;
  search: Awaited<ReturnType<typeof searchPart>> | undefined;
  insights: InsightsPart | undefined;
  webhook: Awaited<ReturnType<typeof webhookPart>> | undefined;
}

function catalogMarkdown(runs: CatalogRuns, seconds: Record<string, number>, loadAtStart: number[], loadAtEnd: number[], shared: boolean): string {
  const { sync, search, insights, webhook } = runs;
  const partLoads: [string, number][] = [];
  if (sync) partLoads.push(['sync', sync.load.before[0] as number]);
  if (webhook) partLoads.push(['webhook', webhook.load.before[0] as number]);
  for (const st of search?.stores ?? []) partLoads.push([`search (${st.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, st.load.before[0] as number]);
  for (const st of insights?.stores ?? []) partLoads.push([`insights (${st.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, st.load.before[0] as number]);
  const parts = [sync && !MEMORY_ONLY ? syncMarkdown(sync) : '', sync ? memoryMarkdown(sync) : '', search ? searchMarkdown(search.seeded, search.stores) : '', insights ? insightsPartMarkdown(insights) : '', webhook ? webhookMarkdown(webhook.runs, webhook.baselines, webhook.storeOnly, webhook.load) : ''].filter((s) => s !== '');
  return `# catalog benchmark

The four goals of the catalog issue, each against a baseline measured in the same run (the machine is shared and noisy:
compare the ratios rather than the absolute figures). ${cpus().length} CPUs; load average (1, 5, 15 min) ${loadAtStart.join(', ')} at the start,
${loadAtEnd.join(', ')} at the end${
    partLoads.length ? `, and the 1-minute figure as each part began: ${partLoads.map(([k, v]) => `${k} ${fmt(v, 1)}`).join(', ')}` : ''
  }. The bench took ${fmt(seconds.total ?? NaN, 0)} s (${Object.entries(seconds)
    .filter(([k]) => k !== 'total')
    .map(([k, v]) => `${k} ${fmt(v, 0)} s`)
    .join(', ')})${shared ? '; the insights and search parts ran in one run, on one seeded catalog, each written to a file of its own' : ''}.

${parts.join('\n\n')}
`;
}

