// The PostgreSQL catalog analyzes the tables it outgrew (src/catalog/pg-statistics.ts): the
// keeper's schedule against a recorded query function and a clock of the test's, then the real
// thing: a fresh catalog filled through the store, its statistics read back from
// pg_stat_user_tables (last_analyze is set by ANALYZE only, never by autovacuum) and pg_class.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MIN_ROWS, STALE_TABLES_SQL, StatisticsKeeper, analyzeStatement } from '../../src/catalog/pg-statistics.js';
import { type Catalog, useBackend } from './backends.js';
import { manifestRecord } from './seed.js';

/** Long enough for any check to end on a loaded machine; only one that waits on the held lock takes it. */
const SAFETY_MS = 20_000;

/**
 * A keeper over a recorded query function, on the test's clock; `answer` gives each check's stale
 * tables. `write`: a write committed, and whatever check it started has settled.
 */
function recorded(answer: () => Promise<Record<string, unknown>[]>) {
  let clock = 10_000;
  const sent: string[] = [];
  const keeper = new StatisticsKeeper({
    now: () => clock,
    query: async (sql, params) => {
      sent.push(params ? `${sql} ${JSON.stringify(params)}` : sql);
      return sql === STALE_TABLES_SQL ? answer() : [];
    },
  });
  const write = async (): Promise<void> => {
    keeper.wrote();
    await keeper.settled();
  };
  return { keeper, sent, write, tick: (ms: number) => (clock += ms) };
}

describe('the statistics keeper', () => {
  it('checks after a write at most once a second, and analyzes only the tables the check names', async () => {
    const { sent, write, tick } = recorded(async () => [{ schema: 'public', table: 'tags' }, { schema: 'cat"alog', table: 'tag_terms' }]);
    await write();
    expect(sent).toEqual([`${STALE_TABLES_SQL} [${MIN_ROWS}]`, analyzeStatement({ schema: 'public', table: 'tags' }), analyzeStatement({ schema: 'cat"alog', table: 'tag_terms' })]);
    tick(999);
    await write();
    expect(sent).toHaveLength(3);
    tick(1);
    await write();
    expect(sent).toHaveLength(6);
  });

  it('sends no ANALYZE when no table is stale', async () => {
    const { sent, write } = recorded(async () => []);
    await write();
    expect(sent).toEqual([`${STALE_TABLES_SQL} [${MIN_ROWS}]`]);
  });

  it('starts no second check while one runs, and a close waits for it and starts none after', async () => {
    let release!: () => void;
    const { keeper, sent, write, tick } = recorded(() => new Promise((resolve) => (release = () => resolve([{ schema: 'public', table: 'tags' }]))));
    keeper.wrote();
    tick(5000);
    keeper.wrote();
    expect(sent).toHaveLength(1);
    let closed = false;
    const closing = keeper.close().then(() => (closed = true));
    await sleep(10);
    expect(closed).toBe(false);
    release();
    await closing;
    // The check named a table, but the catalog closed meanwhile: no ANALYZE on a closing pool.
    expect(sent).toHaveLength(1);
    tick(5000);
    await write();
    expect(sent).toHaveLength(1);
  });

  it('drops a check that fails, without failing the write or leaving a rejection, and checks again later', async () => {
    let fail = true;
    const { sent, write, tick } = recorded(async () => {
      if (fail) throw new Error('connection refused');
      return [];
    });
    await write();
    fail = false;
    tick(1000);
    await write();
    expect(sent).toHaveLength(2);
  });

  it('goes on to the next table when one ANALYZE gave up waiting for its lock, and stops on another error', async () => {
    const stale = [{ schema: 'public', table: 'annotations' }, { schema: 'public', table: 'manifests' }, { schema: 'public', table: 'tags' }];
    const run = async (error: { code: string }): Promise<string[]> => {
      const sent: string[] = [];
      const keeper = new StatisticsKeeper({
        query: async (sql) => {
          sent.push(sql);
          if (sql === STALE_TABLES_SQL) return stale;
          if (sql === analyzeStatement(stale[1]!)) throw Object.assign(new Error('lock'), error);
          return [];
        },
      });
      keeper.wrote();
      await keeper.settled();
      return sent.slice(1);
    };
    expect(await run({ code: '55P03' })).toEqual(stale.map(analyzeStatement));
    expect(await run({ code: '57P01' })).toEqual(stale.slice(0, 2).map(analyzeStatement));
  });

  it('quotes every name it analyzes', () => {
    expect(analyzeStatement({ schema: 'a"; DROP TABLE x; --', table: 't' })).toBe('SET LOCAL lock_timeout = 100; ANALYZE "a""; DROP TABLE x; --"."t"');
  });
});

describe('a PostgreSQL catalog growing from empty', () => {
  const backend = useBackend('postgres');

  /** Which tables of the catalog an ANALYZE has run on (last_analyze: never set by autovacuum). */
  async function analyzed(catalog: Catalog): Promise<Map<string, boolean>> {
    const rows = await catalog.sql('SELECT relname, last_analyze IS NOT NULL AS done FROM pg_stat_user_tables WHERE schemaname = current_schema()');
    return new Map(rows.map((r) => [String(r.relname), r.done === true]));
  }

  /** Twice the keeper's floor of manifests, each with three annotations, in one write. */
  async function putManifests(catalog: Catalog): Promise<void> {
    const records = Array.from({ length: 2 * MIN_ROWS }, (_, i) => manifestRecord(`config ${i}`, { 'com.gitlab.ci.pipeline_id': String(i), 'com.gitlab.ci.commit_ref_name': 'main', 'org.example.n': String(i) }));
    await catalog.store.putManifests(records);
  }

  /**
   * Writes on, as a sync does, until `table` has been analyzed (at most about 20 s): the
   * statistics system counts the rows within a second or so, and a check follows the next write
   * a second after the last one.
   */
  async function writeUntilAnalyzed(catalog: Catalog, table: string): Promise<Map<string, boolean>> {
    let done = new Map<string, boolean>();
    for (let i = 0; i < 100 && !done.get(table); i++) {
      await sleep(200);
      await catalog.store.setCheckpoint('still-writing', i);
      done = await analyzed(catalog);
    }
    return done;
  }

  it('analyzes the tables it outgrew within seconds of its writes, and leaves the others to autovacuum', async () => {
    const catalog = await backend().fresh();
    expect([...(await analyzed(catalog)).values()].some(Boolean)).toBe(false);
    await putManifests(catalog);
    const done = await writeUntilAnalyzed(catalog, 'manifests');
    expect(done.get('manifests')).toBe(true);
    expect(done.get('annotations')).toBe(true);
    // Tables that hold a few rows, or none, were not analyzed.
    expect(done.get('repositories')).toBe(false);
    expect(done.get('sync_checkpoints')).toBe(false);
    // The planner now knows the manifests' size.
    const [stats] = await catalog.sql("SELECT reltuples FROM pg_class WHERE relname = 'manifests' AND relnamespace = current_schema()::regnamespace");
    expect(Number(stats?.reltuples)).toBe(2 * MIN_ROWS);
  });

  it('names only the tables its role may analyze: those it owns, or all when it owns the database', async () => {
    const catalog = await backend().fresh();
    // The store's own keeper, a superuser's, would analyze the table below.
    await catalog.store.close();
    // Owned by the catalog's role; kept from autovacuum, so its statistics stay stale.
    await catalog.exec('CREATE TABLE other_rows WITH (autovacuum_enabled = false) AS SELECT n FROM generate_series(1, 1000) n');
    await catalog.exec('CREATE ROLE stats_guest LOGIN');
    const stale = async (url: string): Promise<string[]> => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query(STALE_TABLES_SQL, [MIN_ROWS])).rows.map((r: { table: string }) => r.table);
      } finally {
        await client.end();
      }
    };
    // The statistics system has counted the rows within a second or so (at most about 20 s here).
    for (let i = 0; i < 100 && !(await stale(catalog.url)).includes('other_rows'); i++) await sleep(200);
    expect(await stale(catalog.url)).toEqual(['other_rows']);
    const guest = catalog.url.replace('//postgres@', '//stats_guest@');
    // ANALYZE of a table it neither owns nor owns the database of only warns, on every check.
    expect(await stale(guest)).toEqual([]);
    const [database] = await catalog.sql('SELECT current_database() AS name');
    await catalog.exec(`ALTER DATABASE ${String(database?.name)} OWNER TO stats_guest`);
    expect(await stale(guest)).toEqual(['other_rows']);
  });

  it('passes over a table another session holds, analyzes the others, and a close does not wait for the lock', async () => {
    const catalog = await backend().fresh();
    // A lock ANALYZE waits for and writes do not: another session's ANALYZE or VACUUM holds it.
    const holder = new pg.Client({ connectionString: catalog.url, application_name: 'test-holder' });
    await holder.connect();
    const order: string[] = [];
    let released: Promise<void> | undefined;
    const release = (): Promise<void> => (released ??= holder.query('COMMIT').then(() => void order.push('released')));
    const safety = setTimeout(() => void release(), SAFETY_MS);
    onTestFinished(async () => {
      clearTimeout(safety);
      await release().catch(() => undefined);
      await holder.end();
    });
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE manifests IN SHARE UPDATE EXCLUSIVE MODE');

    await putManifests(catalog);
    const done = await writeUntilAnalyzed(catalog, 'annotations');
    expect(done.get('annotations')).toBe(true);
    expect(done.get('manifests')).toBe(false);
    await catalog.store.close().then(() => void order.push('closed'));
    await release();
    expect(order).toEqual(['closed', 'released']);
  });
});
