// What one new-manifest webhook event costs the store, on both databases: the statements and
// (PostgreSQL) round trips of putManifest and of setTag, counted through the driver, and the
// store alone timed at 1 and WEBHOOK_CONCURRENCY in flight (as webhook.ts "The store alone").
//
//   node --import tsx bench/catalog/store-statements.ts     (BENCH_CATALOG_EVENTS=N events per timed run; default 300)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/catalog/open.js';
import { openPostgresStore } from '../../src/catalog/postgres.js';
import { openLocalSqliteStore } from '../../src/catalog/sqlite.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import { createDatabase, startPostgres } from '../../test/helpers/postgres.js';
import { type StatementCount, countStatements, roundTrips } from '../../test/helpers/statement-count.js';
import { fmt } from '../lib.js';
import { load, log, now, pool, recordOf, seedManifest } from './common.js';
import { WEBHOOK_CONCURRENCY, envInt } from './settings.js';

/** BENCH_SHOW_STATEMENTS=1: prints the statements of the first counted event of each store. */
let showing = false;

/** Per event: statements and round trips (PostgreSQL: each statement, each lock call, BEGIN with the catalog lock, COMMIT). */
async function perEvent(store: SqlStore, first: number, events: number): Promise<{ put: StatementCount; tag: StatementCount }> {
  const count = countStatements(store.driver, (sql) => {
    if (showing) process.stdout.write(`  ${sql.replace(/\s+/g, ' ').slice(0, 160)}\n`);
  });
  const put: StatementCount = { statements: 0, locks: 0, transactions: 0 };
  const tag: StatementCount = { statements: 0, locks: 0, transactions: 0 };
  const add = (into: StatementCount, from: StatementCount, before: StatementCount) => {
    into.statements += from.statements - before.statements;
    into.locks += from.locks - before.locks;
    into.transactions += from.transactions - before.transactions;
  };
  for (let k = first; k < first + events; k++) {
    const m = seedManifest(k);
    showing = k === first && first > 0 && process.env.BENCH_SHOW_STATEMENTS !== undefined;
    let before = { ...count };
    await store.putManifest(recordOf(m));
    add(put, count, before);
    before = { ...count };
    await store.setTag(m.b.repository, m.b.tag, m.digest, new Date(m.b.at));
    add(tag, count, before);
    showing = false;
  }
  const per = (c: StatementCount) => ({ statements: c.statements / events, locks: c.locks / events, transactions: c.transactions / events });
  return { put: per(put), tag: per(tag) };
}

async function timed(url: string, inFlight: number, events: number): Promise<number> {
  const store = await openStore(url);
  try {
    const started = now();
    await pool(events, inFlight, async (k) => {
      const m = seedManifest(k);
      await store.putManifest(recordOf(m));
      await store.setTag(m.b.repository, m.b.tag, m.digest, new Date(m.b.at));
    });
    return events / ((now() - started) / 1000);
  } finally {
    await store.close();
  }
}

const describe = (c: StatementCount, withRoundTrips: boolean): string =>
  `${fmt(c.statements, 1)} statements, ${fmt(c.locks, 1)} lock calls, ${fmt(c.transactions, 1)} transactions${withRoundTrips ? `, ${fmt(roundTrips(c), 1)} round trips` : ''}`;

async function main(): Promise<void> {
  const events = envInt('BENCH_CATALOG_EVENTS', 300);
  const work = mkdtempSync(join(tmpdir(), 'tagtrail-statements-'));
  const cluster = await startPostgres();
  try {
    log(`load before: ${load().join(' ')}`);
    const local = openLocalSqliteStore({ path: join(work, 'count.db'), busyTimeoutMs: 5000, cacheMiB: 16 });
    await local.store.migrate();
    // Warm up (the repositories exist), then count: each event a new manifest and tag.
    await perEvent(local.store, 0, 20);
    const sqlite = await perEvent(local.store, 1000, 50);
    await local.store.close();
    log(`sqlite putManifest: ${describe(sqlite.put, false)}; setTag: ${describe(sqlite.tag, false)}`);
    const pg = openPostgresStore(await createDatabase(cluster, 'count_statements'));
    await pg.migrate();
    await perEvent(pg, 0, 20);
    const postgres = await perEvent(pg, 1000, 50);
    await pg.close();
    log(`postgres putManifest: ${describe(postgres.put, true)}; setTag: ${describe(postgres.tag, true)}`);
    for (const inFlight of [1, WEBHOOK_CONCURRENCY]) {
      const s = await timed(`sqlite:${join(work, `timed-${inFlight}.db`)}`, inFlight, events);
      log(`store alone sqlite ×${inFlight}: ${fmt(s, 0)} events/s`);
      const p = await timed(await createDatabase(cluster, `timed_${inFlight}`), inFlight, events);
      log(`store alone postgres ×${inFlight}: ${fmt(p, 0)} events/s`);
    }
    log(`load after: ${load().join(' ')}`);
  } finally {
    await cluster.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
