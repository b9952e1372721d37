// The catalog benchmark's sizes and goals. Every size can be made small through the environment,
// to check that a part still runs (see catalog.bench.ts).
export const envInt = (name: string, fallback: number): number => {
  const v = process.env[name];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : fallback;
};
export const PARTS = new Set((process.env.BENCH_CATALOG_PARTS ?? 'sync,search,webhook').split(',').map((s) => s.trim()));

/** Part 1 and 2: registry sizes, the last one is the throughput run. */
export const MAX_TAGS = envInt('BENCH_CATALOG_TAGS', 10_000);
/** Part 2 alone (BENCH_CATALOG_PARTS=memory): the smallest and the largest size, first syncs only. */
export const MEMORY_ONLY = PARTS.has('memory') && !PARTS.has('sync');
export const SYNC_SIZES = (MEMORY_ONLY ? [MAX_TAGS / 4, MAX_TAGS] : [MAX_TAGS / 4, MAX_TAGS / 2, MAX_TAGS]).map(Math.round);
export const REPOSITORIES = 20;
export const PUT_CONCURRENCY = 16;
/** sync's default --concurrency; the raw baseline uses the same. */
export const SYNC_CONCURRENCY = 8;
export const CHILD_TIMEOUT_MS = 10 * 60_000;
/** Sync's rate over the same run's raw loop (HEAD+GET for a first sync, HEAD for an unchanged one), at least this. */
export const SPEED_RATIO_GOAL = 0.9;
/** Flat: peak RSS at the largest size over the smallest, at most this. */
export const RSS_RATIO_GOAL = 1.25;

/** Part 3. */
export const SEARCH_TARGET = envInt('BENCH_CATALOG_MANIFESTS', 1_000_000);
/** Manifests per batch: one SQLite transaction, one multi-row INSERT per PostgreSQL table. */
export const SEED_BATCH = 50_000;
/**
 * Loading stops (at a whole batch) once it has run this long; indexes come after. Six minutes
 * loaded 1,000,000 on a quiet machine but only 800,000 under a load average of 13: the goals are
 * at the full size, so the budget only guards against a load that would never end.
 */
export const SEARCH_LOAD_BUDGET_MS = 20 * 60_000;
/** Timed searches per kind. */
export const QUERIES = envInt('BENCH_CATALOG_QUERIES', 500);
export const WARMUP = 50;
export const NO_MATCH_SHARE = 0.1;
export const P95_GOAL_MS = 20;
export const CHECK_SAMPLE = 300;

/** Part 4. */
/** Tag pushes per run (the registry holds twice as many images). */
export const WEBHOOK_EVENTS = envInt('BENCH_CATALOG_EVENTS', 1000);
export const WEBHOOK_CONCURRENCY = 8;
/** Ingest at WEBHOOK_CONCURRENCY in flight against the plain GET-and-insert loop (webhook.ts), at least. */
export const WEBHOOK_RATIO_GOAL = 0.7;
export const WEBHOOK_SECRET = 'bench-webhook-secret-0123456789';

