import { openStore } from '../../../src/catalog/open.js';
import { fmt } from '../../lib.js';
import { type SeedManifest, log, now, seedManifest } from '../common.js';
import { pgQuery } from './check.js';
import { LOADED_TABLES, PgSeeder, SqliteSeeder, seedDerived } from './seeders.js';
import { SEARCH_LOAD_BUDGET_MS, SEARCH_TARGET, SEED_BATCH } from '../settings.js';

function generate(from: number, count: number): SeedManifest[] {
  return Array.from({ length: count }, (_, k) => seedManifest(from + k));
}

export interface Seeded {
  manifests: number;
  repositories: number;
  /** Both stores loaded side by side from the same generated batches. */
  loadMs: number;
  generateMs: number;
  sqliteWriteMs: number;
  /** Time the loop waited for PostgreSQL after SQLite had written a batch. */
  postgresWaitMs: number;
  sqliteIndexMs: number;
  postgresDeriveMs: number;
  postgresIndexMs: number;
  postgresVacuumMs: number;
}

/**
 * Fills both catalogs with the same manifests, a batch at a time: generated once, sent to
 * PostgreSQL, written to SQLite while PostgreSQL works on it. Stops at SEARCH_TARGET or, at a
 * whole batch, when the load budget is spent. Then the indexes: PostgreSQL's in the database
 * while SQLite builds its own.
 */
export async function seedBoth(work: string, sqlitePath: string, pgUrl: string): Promise<Seeded> {
  await (await openStore(`sqlite:${sqlitePath}`)).close();
  await (await openStore(pgUrl)).close();
  const derived = await seedDerived(work);
  const lite = new SqliteSeeder(sqlitePath, derived);
  const pgs = new PgSeeder(pgUrl, derived);
  try {
    await pgs.prepare();
    const started = now();
    let n = 0;
    let generateMs = 0;
    let sqliteWriteMs = 0;
    let postgresWaitMs = 0;
    let lastLog = started;
    while (n < SEARCH_TARGET && now() - started < SEARCH_LOAD_BUDGET_MS) {
      const g = now();
      const batch = generate(n, Math.min(SEED_BATCH, SEARCH_TARGET - n));
      generateMs += now() - g;
      const sent = pgs.insert(batch, n + 1);
      sqliteWriteMs += await lite.insert(batch, n + 1);
      const w = now();
      await sent;
      postgresWaitMs += now() - w;
      n += batch.length;
      if (now() - lastLog > 30_000 || n === SEARCH_TARGET) {
        lastLog = now();
        log(`search: ${n.toLocaleString('en')} manifests loaded into both stores in ${fmt((now() - started) / 1000, 0)} s`);
      }
    }
    const loadMs = now() - started;
    // PostgreSQL derives its rows and builds its indexes in the database; its first statements
    // are on their way before SQLite's index builds hold the event loop.
    const pgFinish = pgs.finish();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const sqliteIndexMs = await lite.finish();
    log(`search: SQLite indexes built in ${fmt(sqliteIndexMs / 1000, 0)} s`);
    const { deriveMs, indexMs } = await pgFinish;
    log(`search: PostgreSQL rows derived in ${fmt(deriveMs / 1000, 0)} s, indexes in ${fmt(indexMs / 1000, 0)} s`);
    // As autovacuum would after a load like this; visibility maps make index-only scans index-only.
    const v = now();
    const db = await pgQuery(pgUrl);
    try {
      for (const table of [...LOADED_TABLES, 'insight_images', 'insight_counts', 'insight_platforms', 'insight_namespace_counts', 'insight_namespace_platforms']) await db.q(`VACUUM (ANALYZE) ${table}`);
    } finally {
      await db.close();
    }
    const postgresVacuumMs = now() - v;
    return {
      manifests: n,
      repositories: lite.repos.rows.size,
      loadMs: Math.round(loadMs),
      generateMs: Math.round(generateMs),
      sqliteWriteMs: Math.round(sqliteWriteMs),
      postgresWaitMs: Math.round(postgresWaitMs),
      sqliteIndexMs: Math.round(sqliteIndexMs),
      postgresDeriveMs: Math.round(deriveMs),
      postgresIndexMs: Math.round(indexMs),
      postgresVacuumMs: Math.round(postgresVacuumMs),
    };
  } finally {
    await pgs.close();
  }
}

