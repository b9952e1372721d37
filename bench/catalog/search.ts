import { existsSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Driver } from '../../src/catalog/sql/driver.js';
import type { Store } from '../../src/catalog/store.js';
import { explainSearch } from '../catalog/explain.js';
import { openStore } from '../../src/catalog/open.js';
import type { SearchQuery } from '../../src/catalog/types.js';
import { type PostgresCluster, createDatabase } from '../../test/helpers/postgres.js';
import { fmt } from '../lib.js';
import { type Stats, build, int, load, log, now, passMiss, prng, secs, sha256hex, stats } from './common.js';
import { checkSeeder, pgQuery, readBack } from './seed/check.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import { hydrate as hydrateTagIds, planSearch } from '../../src/catalog/sql/search.js';
import { loadViews } from '../../src/catalog/sql/terms.js';
import { type Seeded, seedBoth } from './seed/seed.js';
import { CHECK_SAMPLE, NO_MATCH_SHARE, P95_GOAL_MS, QUERIES, SEARCH_LOAD_BUDGET_MS, SEARCH_TARGET, SEED_BATCH, WARMUP } from './settings.js';


type Kind = 'annotation' | 'commit' | 'pipeline';
const KINDS: Kind[] = ['annotation', 'commit', 'pipeline'];
const KIND_LABEL: Record<Kind, string> = { annotation: 'annotation key=value', commit: 'commit prefix (7-12 hex)', pipeline: 'pipeline id' };

interface Probe {
  query: SearchQuery;
  /** False for the values made up not to match. */
  match: boolean;
}

function makeQueries(kind: Kind, n: number, count: number, seed: number): Probe[] {
  const rng = prng(seed);
  const out: Probe[] = [];
  for (let k = 0; k < count; k++) {
    const b = build(Math.floor(rng() * n));
    const miss = rng() < NO_MATCH_SHARE;
    switch (kind) {
      case 'annotation': {
        const keys = Object.keys(b.annotations);
        const key = keys[Math.floor(rng() * keys.length)] as string;
        out.push({ query: { annotations: [{ key, value: miss ? `no-such-value-${Math.floor(rng() * 1e9)}` : (b.annotations[key] as string) }] }, match: !miss });
        break;
      }
      case 'commit': {
        const length = 7 + Math.floor(rng() * 6);
        const commit = miss ? sha256hex(`no such commit ${k} ${seed}`) : b.commit;
        out.push({ query: { commit: commit.slice(0, length) }, match: !miss });
        break;
      }
      case 'pipeline':
        out.push({ query: { pipeline: miss ? String(90_000_000 + Math.floor(rng() * 1e6)) : b.pipeline }, match: !miss });
        break;
    }
  }
  return out;
}

interface KindTiming {
  kind: Kind;
  stats: Stats;
  /** The queries that filled a whole page (50 results), and the others. */
  fullPage: Stats;
  partPage: Stats;
  /** Matching probes that came back empty, and made-up ones that did not (both should be 0; a made-up commit prefix may match by chance). */
  wrong: number;
  meanItems: number;
}

async function timeKind(store: Store, kind: Kind, n: number, count: number, seed: number): Promise<KindTiming> {
  for (const p of makeQueries(kind, n, WARMUP, seed + 1000)) await store.searchImages(p.query);
  const probes = makeQueries(kind, n, count, seed);
  const ms: number[] = [];
  const full: number[] = [];
  const part: number[] = [];
  let wrong = 0;
  let items = 0;
  for (const p of probes) {
    const started = now();
    const page = await store.searchImages(p.query);
    const t = now() - started;
    ms.push(t);
    (page.items.length >= 50 ? full : part).push(t);
    items += page.items.length;
    if (p.match !== page.items.length > 0) wrong++;
  }
  return { kind, stats: stats(ms), fullPage: stats(full), partPage: stats(part), wrong, meanItems: items / probes.length };
}

const PHASE_QUERIES = 200;

interface PhaseTiming {
  kind: Kind;
  /** planSearch: the repository lookup, if any, and the capped count that picks the driving filter, when it can change the plan. */
  plan: Stats;
  /** The id query. */
  ids: Stats;
  /** Reading the details of the page's tags (hydrate). */
  hydrate: Stats;
  /**
   * The same page's details read as before they took one statement: the tags, then the
   * manifests, their children, annotations and labels a statement each (the store's loadViews,
   * which its writes still use). Timed on the same pages, alternately first and second.
   */
  hydrateSeparate: Stats;
  /** The capped count as planning ran it for every filter before, now only where it can change the plan. */
  probe: Stats;
}

/** searchImages taken apart (its private steps, called as it calls them), to see where the time goes. */
async function timePhases(store: Store, kind: Kind, n: number, count: number, seed: number): Promise<PhaseTiming> {
  // searchImages taken apart: the same steps, called as it calls them (src/catalog/sql/search.ts).
  const db: Driver = (store as SqlStore).driver;
  const plan: number[] = [];
  const ids: number[] = [];
  const hydrate: number[] = [];
  const hydrateSeparate: number[] = [];
  const probe: number[] = [];
  const separate = async (tagIds: number[]): Promise<number> => {
    const t = now();
    if (tagIds.length > 0) {
      const rows = await db.all<{ digest: string | null; repository_id: number }>(
        `SELECT g.id, g.repository_id, r.name AS repository, g.name AS tag, g.digest, g.updated_at FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE g.id IN (${tagIds.map(() => '?').join(', ')})`,
        tagIds,
      );
      // A statement per table, per repository (referrers are read per repository since they count only there).
      const byRepository = new Map<number, Set<string>>();
      for (const r of rows) if (r.digest !== null) byRepository.set(Number(r.repository_id), (byRepository.get(Number(r.repository_id)) ?? new Set()).add(r.digest));
      for (const [repoId, digests] of byRepository) await loadViews(db, repoId, [...digests]);
    }
    return now() - t;
  };
  let k = 0;
  for (const p of makeQueries(kind, n, count, seed)) {
    const t0 = now();
    const planned = await planSearch(db, p.query);
    const t1 = now();
    if (!planned) continue;
    const rows = await db.all<{ tag_id: unknown }>(planned.sql, planned.params, { prepare: planned.prepare });
    const t2 = now();
    const page = rows.slice(0, planned.limit).map((r) => Number(r.tag_id));
    const first = k++ % 2 === 0;
    if (!first) hydrateSeparate.push(await separate(page));
    const t3 = now();
    await hydrateTagIds(db, page);
    const t4 = now();
    if (first) hydrateSeparate.push(await separate(page));
    plan.push(t1 - t0);
    ids.push(t2 - t1);
    hydrate.push(t4 - t3);
    // The count as planning asked it of the first filter before (kind-specific SQL of the plan's driver).
    const t5 = now();
    const where = /FROM tag_terms t0 WHERE (.*?)(?: AND EXISTS| AND t0\.updated_at| ORDER BY)/.exec(planned.sql);
    if (where) {
      const n = (where[1]?.match(/\?/g) ?? []).length;
      await db.all(`SELECT count(*) AS n FROM (SELECT 1 AS one FROM tag_terms t0 WHERE ${where[1]} LIMIT ?) s`, [...planned.params.slice(0, n), 1000]);
      probe.push(now() - t5);
    }
  }
  return { kind, plan: stats(plan), ids: stats(ids), hydrate: stats(hydrate), hydrateSeparate: stats(hydrateSeparate), probe: stats(probe) };
}

async function timeSelectOne(store: Store, count: number): Promise<number[]> {
  // The store's own driver: the same queue or pool every search goes through.
  const driver: Driver = (store as SqlStore).driver;
  for (let k = 0; k < WARMUP; k++) await driver.all('SELECT 1 AS one');
  const ms: number[] = [];
  for (let k = 0; k < count; k++) {
    const started = now();
    await driver.all('SELECT 1 AS one');
    ms.push(now() - started);
  }
  return ms;
}

interface PlanRecord {
  name: string;
  query: SearchQuery;
  sql: string;
  plan: string[];
  /** The plan reads tag_terms through one of its indexes. */
  usesIndex: boolean;
  /** The plan reads a whole table (or a whole index) somewhere. */
  fullScan: boolean;
}

async function explainAll(store: Store, n: number): Promise<PlanRecord[]> {
  const b = build(Math.floor(n / 3));
  const cases: { name: string; query: SearchQuery }[] = [
    { name: 'annotation, selective (job_id)', query: { annotations: [{ key: 'com.gitlab.ci.job_id', value: b.annotations['com.gitlab.ci.job_id'] as string }] } },
    { name: 'annotation, common (commit_ref_name=main)', query: { annotations: [{ key: 'com.gitlab.ci.commit_ref_name', value: 'main' }] } },
    { name: 'commit prefix (8 hex)', query: { commit: b.commit.slice(0, 8) } },
    { name: 'pipeline id', query: { pipeline: b.pipeline } },
  ];
  const out: PlanRecord[] = [];
  for (const c of cases) {
    const e = await explainSearch(store, c.query);
    const text = e.plan.join('\n');
    const usesIndex = /tag_terms_search|tag_terms_tag/.test(text);
    // SQLite: SEARCH is a range of an index, SCAN reads all of a table or index; PostgreSQL: Seq Scan.
    const fullScan = store.dialect === 'sqlite' ? /\bSCAN \w/.test(text) : /Seq Scan/.test(text);
    out.push({ name: c.name, query: c.query, sql: e.sql, plan: e.plan, usesIndex, fullScan });
  }
  return out;
}



interface StoreSearch {
  store: 'sqlite' | 'postgres';
  target: number;
  manifests: number;
  repositories: number;
  seederCheck: { sample: number; identical: boolean; differing: string[] };
  readBackProblems: string[];
  indexMs: number;
  /** SQLite: ANALYZE; PostgreSQL: VACUUM (ANALYZE). */
  analyzeMs: number;
  catalogMiB: number;
  selectOne: Stats;
  kinds: KindTiming[];
  /** Where a search's time goes. */
  phases: PhaseTiming[];
  plans: PlanRecord[];
  /** SQLite only: the same without ANALYZE's statistics (tagtrail itself never runs it). */
  beforeAnalyze?: { kinds: KindTiming[]; plansSame: boolean; plans: PlanRecord[] };
  load: { before: number[]; after: number[] };
}


async function measureStore(dialect: 'sqlite' | 'postgres', url: string, seeded: Seeded, seederCheck: StoreSearch['seederCheck']): Promise<StoreSearch> {
  const before = load();
  const n = seeded.manifests;
  let beforeAnalyze: StoreSearch['beforeAnalyze'];
  let analyzeMs = 0;
  let catalogMiB: number;
  if (dialect === 'sqlite') {
    // What a catalog written by tagtrail looks like: no sqlite_stat1. Its plans now; its timings
    // at the end, with the stats dropped again, once the cache is as warm as for the main run.
    const store = await openStore(url);
    try {
      beforeAnalyze = { kinds: [], plans: await explainAll(store, n), plansSame: false };
    } finally {
      await store.close();
    }
    const a = now();
    const db = new Database(url.slice('sqlite:'.length));
    db.pragma('analysis_limit = 1000');
    db.exec('ANALYZE');
    db.close();
    analyzeMs = now() - a;
    const path = url.slice('sqlite:'.length);
    catalogMiB = [path, `${path}-wal`].filter(existsSync).reduce((sum, f) => sum + statSync(f).size, 0) / 1048576;
  } else {
    analyzeMs = seeded.postgresVacuumMs;
    const db = await pgQuery(url);
    try {
      const size = (await db.q('SELECT pg_database_size(current_database()) AS n')) as { n: string }[];
      catalogMiB = Number(size[0]?.n) / 1048576;
    } finally {
      await db.close();
    }
  }
  let store = await openStore(url);
  try {
    const readBackProblems = await readBack(store, n, seeded.repositories);
    const plans = await explainAll(store, n);
    if (beforeAnalyze) beforeAnalyze.plansSame = JSON.stringify(beforeAnalyze.plans.map((p) => p.plan)) === JSON.stringify(plans.map((p) => p.plan));
    const selectOne = await timeSelectOne(store, QUERIES / 2);
    const kinds: KindTiming[] = [];
    for (const kind of KINDS) {
      const t = await timeKind(store, kind, n, QUERIES, 1 + KINDS.indexOf(kind));
      kinds.push(t);
      log(`search ${dialect} ${kind}: p50 ${fmt(t.stats.p50, 2)} ms, p95 ${fmt(t.stats.p95, 2)} ms, p99 ${fmt(t.stats.p99, 2)} ms`);
    }
    // The baseline before and after the searches, pooled.
    selectOne.push(...(await timeSelectOne(store, QUERIES / 2)));
    const phases: PhaseTiming[] = [];
    for (const kind of KINDS) phases.push(await timePhases(store, kind, n, PHASE_QUERIES, 21 + KINDS.indexOf(kind)));
    log(`search ${dialect} phases: ${phases.map((ph) => `${ph.kind} p95 plan ${fmt(ph.plan.p95, 2)} / ids ${fmt(ph.ids.p95, 2)} / hydrate ${fmt(ph.hydrate.p95, 2)} ms`).join('; ')}`);
    if (beforeAnalyze) {
      await store.close();
      const db = new Database(url.slice('sqlite:'.length));
      for (const t of ['sqlite_stat1', 'sqlite_stat4']) db.exec(`DROP TABLE IF EXISTS ${t}`);
      db.close();
      store = await openStore(url);
      for (const kind of KINDS) beforeAnalyze.kinds.push(await timeKind(store, kind, n, Math.round(QUERIES / 5), 11 + KINDS.indexOf(kind)));
      log(`search sqlite without ANALYZE: ${beforeAnalyze.kinds.map((k) => `${k.kind} p95 ${fmt(k.stats.p95, 2)} ms`).join(', ')}`);
    }
    return {
      store: dialect,
      target: SEARCH_TARGET,
      manifests: n,
      repositories: seeded.repositories,
      seederCheck,
      readBackProblems,
      indexMs: dialect === 'sqlite' ? seeded.sqliteIndexMs : seeded.postgresIndexMs,
      analyzeMs: Math.round(analyzeMs),
      catalogMiB: Math.round(catalogMiB),
      selectOne: stats(selectOne),
      kinds,
      phases,
      plans,
      ...(beforeAnalyze ? { beforeAnalyze } : {}),
      load: { before, after: load() },
    };
  } finally {
    await store.close();
  }
}

/** `beforeMeasure`: another part measured on the same seeded catalog first, store by store (the SQLite file goes once measured). */
export async function searchPart(
  work: string,
  cluster: PostgresCluster,
  beforeMeasure?: (dialect: 'sqlite' | 'postgres', url: string, seeded: Seeded) => Promise<void>,
): Promise<{ seeded: Seeded; stores: StoreSearch[] }> {
  const checks: Record<string, StoreSearch['seederCheck']> = {};
  for (const dialect of ['sqlite', 'postgres'] as const) {
    log(`search ${dialect}: checking the seeder against putManifest + setTag on ${CHECK_SAMPLE} manifests`);
    const check = await checkSeeder(dialect, work, cluster);
    if (!check.identical) throw new Error(`the ${dialect} seeder writes other rows than the Store: ${check.differing.join(', ')}`);
    checks[dialect] = check;
  }
  const sqlitePath = join(work, 'search.db');
  const pgUrl = await createDatabase(cluster, 'search_bench');
  const seeded = await seedBoth(work, sqlitePath, pgUrl);
  const stores: StoreSearch[] = [];
  await beforeMeasure?.('sqlite', `sqlite:${sqlitePath}`, seeded);
  stores.push(await measureStore('sqlite', `sqlite:${sqlitePath}`, seeded, checks.sqlite as StoreSearch['seederCheck']));
  // Gigabytes: gone as soon as measured, so PostgreSQL has the page cache to itself.
  for (const f of ['search.db', 'search.db-wal', 'search.db-shm']) await rm(join(work, f), { force: true });
  await beforeMeasure?.('postgres', pgUrl, seeded);
  stores.push(await measureStore('postgres', pgUrl, seeded, checks.postgres as StoreSearch['seederCheck']));
  return { seeded, stores };
}


export function searchMarkdown(seeded: Seeded, results: StoreSearch[]): string {
  const sections = results.map((r) => {
    const name = r.store === 'sqlite' ? 'SQLite' : 'PostgreSQL';
    const reached = r.manifests >= r.target ? `${int(r.manifests)} manifests` : `**${int(r.manifests)} manifests: the load stopped at its time budget short of ${int(r.target)}**; the figures are at this size`;
    const rows = r.kinds.map((k) => {
      const ok = k.stats.p95 < P95_GOAL_MS;
      const miss = ok ? '' : ` (${fmt(k.stats.p95 / P95_GOAL_MS, 1)}× the goal)`;
      return `| ${KIND_LABEL[k.kind]} | ${fmt(k.stats.p50, 2)} | ${fmt(k.stats.p95, 2)} | ${fmt(k.stats.p99, 2)} | ${fmt(k.stats.max, 1)} | ${fmt(k.meanItems, 1)} | ${k.fullPage.n ? `${fmt(k.fullPage.p95, 2)} (${k.fullPage.n})` : '—'} | ${k.partPage.n ? `${fmt(k.partPage.p95, 2)} (${k.partPage.n})` : '—'} | ${int(k.stats.p50 / r.selectOne.p50)}× | < ${P95_GOAL_MS} ms | ${passMiss(ok)}${miss} |`;
    });
    const phases = r.phases.map(
      (ph) =>
        `| ${KIND_LABEL[ph.kind]} | ${fmt(ph.plan.p50, 2)} / ${fmt(ph.plan.p95, 2)} | ${fmt(ph.ids.p50, 2)} / ${fmt(ph.ids.p95, 2)} | ${fmt(ph.hydrate.p50, 2)} / ${fmt(ph.hydrate.p95, 2)} | ${fmt(ph.hydrateSeparate.p50, 2)} / ${fmt(ph.hydrateSeparate.p95, 2)} | ${fmt(ph.probe.p50, 2)} / ${fmt(ph.probe.p95, 2)} |`,
    );
    const plans = r.plans
      .map((p) => `- ${p.name}: ${p.usesIndex ? 'reads tag_terms through its index' : '**does not use the tag_terms indexes**'}${p.fullScan ? ', **with a full scan**' : ', no full scan'}\n\n  \`\`\`\n${p.plan.map((l) => `  ${l}`).join('\n')}\n  \`\`\``)
      .join('\n');
    const before = r.beforeAnalyze
      ? `\nWithout ANALYZE's statistics, as tagtrail leaves a catalog (it never runs ANALYZE): the plans ${
          r.beforeAnalyze.plansSame ? 'are the same as with them' : '**differ** from those with them (both in the JSON)'
        }; with the statistics dropped again after the run above (same warm cache), ${Math.round(QUERIES / 5)} queries a kind: ${r.beforeAnalyze.kinds
          .map((k) => `${KIND_LABEL[k.kind]} p95 ${fmt(k.stats.p95, 2)} ms`)
          .join(', ')}.\n`
      : '';
    return `### ${name}: ${reached}

${int(r.repositories)} repositories, one tag per manifest, 15 annotations each (${int(r.manifests * 15)} annotation rows and as many search terms).
Seeder checked against putManifest + setTag on ${r.seederCheck.sample} manifests: ${r.seederCheck.identical ? 'every row identical' : `**differs in ${r.seederCheck.differing.join(', ')}**`}; read back through the Store API: ${r.readBackProblems.length === 0 ? 'as written' : `**${r.readBackProblems.join('; ')}**`}.
Indexes ${secs(r.indexMs)}${r.store === 'postgres' ? ` (after deriving annotations, terms and tag events in SQL: ${secs(seeded.postgresDeriveMs)})` : ''}, ${r.store === 'sqlite' ? 'ANALYZE (analysis_limit 1000)' : 'VACUUM (ANALYZE)'} ${secs(r.analyzeMs)}; catalog ${int(r.catalogMiB)} MiB.

\`searchImages\` end to end (the query, its probe count where it can change the plan, and reading the 50 results' details in one statement), ${QUERIES} queries a kind after ${WARMUP} warm-up, random existing values with ${NO_MATCH_SHARE * 100} % made-up ones.
Baseline \`SELECT 1\` through the same driver: p50 ${fmt(r.selectOne.p50, 3)} ms, p95 ${fmt(r.selectOne.p95, 3)} ms.

| query | p50 ms | p95 ms | p99 ms | max ms | results (mean) | p95 ms, full pages (n) | p95 ms, other queries (n) | p50 / SELECT 1 | goal p95 | result |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|
${rows.join('\n')}

Wrong answers (a matching value not found, or a made-up one found): ${r.kinds.map((k) => `${k.kind} ${k.wrong}`).join(', ')}.

Where the time goes, p50 / p95 ms over ${PHASE_QUERIES} more queries a kind (searchImages' own steps, timed one by one): planning (the
capped count that picks the driving filter, skipped for a value filter without a repository), the id query, and reading the page's details (hydrate,
one statement). For comparison on the same pages: the details read a statement per table as before (the tags, then the store's
loadViews: manifests, children, annotations, labels), and the capped count that planning used to run for every query.

| query | planning | id query | details of the page | details, a statement per table | the capped count |
|---|---:|---:|---:|---:|---:|
${phases.join('\n')}
${before}
Plans (\`explainSearch\`):

${plans}`;
  });
  const reached = seeded.manifests >= SEARCH_TARGET ? '' : ` (reached: ${int(seeded.manifests)})`;
  return `## 3. Search latency at ${int(SEARCH_TARGET)} indexed manifests${reached}

Both catalogs were filled side by side from the same generated manifests, ${int(SEED_BATCH)} a batch, by a bulk seeder writing the
stores' own tables (SQLite: prepared statements, one transaction a batch; PostgreSQL: INSERT … SELECT FROM unnest(…), the
annotations, search terms and tag events then derived from the manifests in SQL), secondary indexes dropped for the load and
created again from their own definitions. Load ${secs(seeded.loadMs)} for both (generating ${secs(seeded.generateMs)}, SQLite writing
${secs(seeded.sqliteWriteMs)}, waiting for PostgreSQL ${secs(seeded.postgresWaitMs)}); load budget ${secs(SEARCH_LOAD_BUDGET_MS)}.

${sections.join('\n\n')}`;
}

