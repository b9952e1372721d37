// The insights goal, measured on the search part's seeded catalog: the report from the weekly
// aggregates (what serve answers) against the full recount from the base tables (what it did
// before), in the same run, on the same catalog; and whether the two agree. The same for what the
// page and API show beside the report (verified images and images by pusher, verifiedInsights:
// every seeded manifest has its pusher, every 10th a verification) against the scan of the tags it
// replaced (recountInsightEvidence).
import type { Store } from '../../src/catalog/store.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import { insightsWindow, listedRepositories, recountInsights } from '../../src/catalog/sql/insights.js';
import { recountInsightEvidence } from '../../src/catalog/sql/verifications.js';
import { readableSql } from '../../src/catalog/sql/read-scope-sql.js';
import type { InsightsQuery } from '../../src/catalog/types.js';
import { join } from 'node:path';
import { openStore } from '../../src/catalog/open.js';
import { type PostgresCluster, createDatabase } from '../../test/helpers/postgres.js';
import { fmt } from '../lib.js';
import { type Stats, T0, int, load, log, now, passMiss, stats } from './common.js';
import { checkSeeder } from './seed/check.js';
import { type Seeded, seedBoth } from './seed/seed.js';

/** The insights goal: the whole report in under this. */
export const INSIGHTS_GOAL_MS = 100;
const REPORT_RUNS = 30;
const RECOUNT_RUNS = 3;
const WARMUP = 3;
/** The seeders' clock: build i is pushed at T0 + i × 30 s (common.ts). */
const SEED_STEP_MS = 30_000;

export interface InsightsTiming {
  name: string;
  images: number;
  report: Stats;
  recount: Stats;
  /** The report from the aggregates equals the recount. */
  same: boolean;
  /** Verified images and images by pusher (verifiedInsights), its recount, and whether they agree. */
  evidence: { verified: number; report: Stats; recount: Stats; same: boolean };
}

async function time(runs: number, fn: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t = now();
    await fn();
    ms.push(now() - t);
  }
  return ms;
}

/** The signed-in person's projects: every 60th of the seeded 3,000 (common.ts build()), busy ones and quiet ones. */
export const SCOPED_PROJECTS = Array.from({ length: 50 }, (_, k) => {
  const p = k * 60;
  return `group-${p % 89}/project-${p}`;
});

/** The whole catalog's report (every seeded week), one namespace's, and a signed-in person's with 50 projects. */
export async function timeInsights(store: Store, manifests: number): Promise<InsightsTiming[]> {
  const sql = store as SqlStore;
  const whole: InsightsQuery = { from: new Date(T0), to: new Date(T0 + manifests * SEED_STEP_MS) };
  const queries: [string, InsightsQuery][] = [
    ['whole catalog, every seeded week', whole],
    ['one namespace (group-0)', { ...whole, namespace: 'group-0' }],
    [`signed in, member of ${SCOPED_PROJECTS.length} projects`, { ...whole, scope: { projects: SCOPED_PROJECTS, publicAndInternal: false } }],
  ];
  const out: InsightsTiming[] = [];
  for (const [name, query] of queries) {
    const window = insightsWindow(query);
    // The same read rule as store.insights applies.
    const readable = query.scope ? readableSql(sql.driver.dialect, query.scope, 'rs') : undefined;
    const recount = () => recountInsights(sql.driver, query, window, readable);
    const expected = await recount();
    const report = await sql.insights(query);
    await time(WARMUP, () => sql.insights(query));
    // The evidence beside it, recounted by the scan it replaced (the same repositories, as verifiedInsights lists them).
    const recountEvidence = async () => {
      const ids = await listedRepositories(sql.driver, query, readable);
      return ids !== null && ids.length === 0 ? { verified: 0, pushedBy: {} } : recountInsightEvidence(sql.driver, window.from, window.to, ids);
    };
    const expectedEvidence = await recountEvidence();
    const evidence = await sql.verifiedInsights(query);
    await time(WARMUP, () => sql.verifiedInsights(query));
    const sorted = (e: { verified: number; pushedBy: Record<string, number> }) => JSON.stringify([e.verified, Object.entries(e.pushedBy).sort()]);
    out.push({
      name,
      images: report.totals.images,
      report: stats(await time(REPORT_RUNS, () => sql.insights(query))),
      recount: stats(await time(RECOUNT_RUNS, recount)),
      same: JSON.stringify(report) === JSON.stringify(expected),
      evidence: {
        verified: evidence.verified,
        report: stats(await time(REPORT_RUNS, () => sql.verifiedInsights(query))),
        recount: stats(await time(RECOUNT_RUNS, recountEvidence)),
        same: sorted(evidence) === sorted(expectedEvidence),
      },
    });
  }
  return out;
}

export function insightsMarkdown(timings: InsightsTiming[]): string {
  const rows = timings.map(
    (t) =>
      `| ${t.name} | ${int(t.images)} | ${fmt(t.report.p50, 1)} | ${fmt(t.report.p95, 1)} | ${fmt(t.recount.p50, 0)} | ${fmt(t.recount.p50 / t.report.p50, 0)}× | ${t.same ? 'yes' : '**no**'} | < ${INSIGHTS_GOAL_MS} ms | ${passMiss(t.report.p95 < INSIGHTS_GOAL_MS)} |`,
  );
  const evidenceRows = timings.map(
    (t) =>
      `| ${t.name} | ${int(t.evidence.verified)} | ${fmt(t.evidence.report.p50, 1)} | ${fmt(t.evidence.report.p95, 1)} | ${fmt(t.evidence.recount.p50, 0)} | ${fmt(t.evidence.recount.p50 / t.evidence.report.p50, 0)}× | ${t.evidence.same ? 'yes' : '**no**'} | ${fmt(t.report.p95 + t.evidence.report.p95, 1)} | < ${INSIGHTS_GOAL_MS} ms | ${passMiss(t.evidence.report.p95 < INSIGHTS_GOAL_MS)} |`,
  );
  return `Insights report (\`store.insights\`, from the weekly aggregates) against the full recount from tag events and manifests (the same-run baseline), ${REPORT_RUNS} reports after ${WARMUP} warm-up, ${RECOUNT_RUNS} recounts:

| report | images | p50 ms | p95 ms | recount p50 ms | recount / report | equals the recount | goal p95 | result |
|---|---:|---:|---:|---:|---:|---|---|---|
${rows.join('\n')}

Beside each report, the verified images and images by pusher (\`store.verifiedInsights\`, from their weekly aggregates) against the scan of the tags in the window they were counted by before (the same-run baseline), ${REPORT_RUNS} after ${WARMUP} warm-up, ${RECOUNT_RUNS} scans; the page and the API answer both, so the report's p95 and this p95 add up:

| report | verified images | p50 ms | p95 ms | scan p50 ms | scan / aggregates | equals the scan | report + this p95 ms | goal p95 | result |
|---|---:|---:|---:|---:|---:|---|---:|---|---|
${evidenceRows.join('\n')}`;
}

export interface InsightsPart {
  seeded: Seeded;
  stores: { store: 'sqlite' | 'postgres'; seederIdentical: boolean; timings: InsightsTiming[]; load: { before: number[]; after: number[] } }[];
}

type InsightsStore = InsightsPart['stores'][number];

/** The reports on one seeded catalog (its seeder already checked row for row). */
export async function measureInsights(dialect: 'sqlite' | 'postgres', url: string, manifests: number): Promise<InsightsStore> {
  const before = load();
  const store = await openStore(url);
  try {
    const timings = await timeInsights(store, manifests);
    log(
      `insights ${dialect}: ${timings
        .map(
          (x) =>
            `${x.name} p95 ${fmt(x.report.p95, 1)} ms (recount p50 ${fmt(x.recount.p50, 0)} ms, ${x.same ? 'equal' : 'NOT equal'}); verifiedInsights p95 ${fmt(x.evidence.report.p95, 1)} ms (scan p50 ${fmt(x.evidence.recount.p50, 0)} ms, ${x.evidence.same ? 'equal' : 'NOT equal'})`,
        )
        .join('; ')}`,
    );
    return { store: dialect, seederIdentical: true, timings, load: { before, after: load() } };
  } finally {
    await store.close();
  }
}

/**
 * `catalog:insights` alone: the search part's catalog seeded for it (aggregates filled by the
 * seeders, checked row for row), then the reports. With the search part in the same run, the
 * reports are measured on the search part's catalog instead (catalog.bench.ts): one seed.
 */
export async function insightsPart(work: string, cluster: PostgresCluster): Promise<InsightsPart> {
  for (const dialect of ['sqlite', 'postgres'] as const) {
    const check = await checkSeeder(dialect, work, cluster);
    if (!check.identical) throw new Error(`the ${dialect} seeder writes other rows than the Store: ${check.differing.join(', ')}`);
  }
  const sqliteUrl = `sqlite:${join(work, 'insights.db')}`;
  const pgUrl = await createDatabase(cluster, 'insights_bench');
  const seeded = await seedBoth(work, sqliteUrl.slice('sqlite:'.length), pgUrl);
  const stores: InsightsStore[] = [];
  for (const [dialect, url] of [['sqlite', sqliteUrl], ['postgres', pgUrl]] as const) stores.push(await measureInsights(dialect, url, seeded.manifests));
  return { seeded, stores };
}

export function insightsPartMarkdown(part: InsightsPart): string {
  return `## Insights report at ${int(part.seeded.manifests)} images

The search part's catalog (one annotated image manifest per tag, ${int(part.seeded.repositories)} repositories, a push every 30 s), loaded by its bulk seeders, which fill the insights aggregates as ingest keeps them (checked row for row against putManifest + setTag on a sample).

${part.stores
  .map((s) => `### ${s.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} (load average before ${s.load.before.join(' / ')}, after ${s.load.after.join(' / ')})\n\n${insightsMarkdown(s.timings)}`)
  .join('\n\n')}`;
}
