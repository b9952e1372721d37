// The PostgreSQL dialect (pg).
//
// Write transactions hold the catalog-wide advisory lock: write() exclusively (a crawl's
// reconciliation, migrations, the rare writes), so it runs alone as in SQLite; writeAlongside()
// shared (tag events, manifests), so those run side by side and lock only what they touch:
// transaction-scoped advisory locks per manifest and tag, taken in one order
// (sql/driver.ts LOCK_LEVELS). Readers never wait (MVCC). Concurrent `serve` start-ups migrate once.
// withLock takes a session advisory lock (pg_try_advisory_lock) on a connection of its own, held
// until fn settles.
//
// The password of the URL never reaches a message: errors are rebuilt with it redacted.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { StoreError, isTagtrailError } from '../errors.js';
import { createLimiter } from './limit.js';
import { POSTGRES_MIGRATIONS } from './migrations/postgres.js';
import { type Dialect, type Driver, LOCK_LEVELS, type LockKey, LocksOutdated, type Param, type QueryOptions, type Queryable } from './sql/driver.js';
import { SqlStore } from './sql/store.js';
import { databaseUrlSecrets, redactDatabaseUrl } from './database-url.js';
import { StatisticsKeeper } from './pg-statistics.js';
import type { ExplainOptions, LockResult } from './types.js';

const INT8_OID = 20;
const POOL_SIZE = 10;
/** Pooled connections writes never take. */
const READ_CONNECTIONS = 4;
const RETRIES = 5;
const RETRYABLE = new Set(['40001', '40P01']); // serialization failure, deadlock

const POSTGRES_DIALECT: Dialect = {
  name: 'postgres',
  greatest: 'GREATEST',
  contains: (haystack, needle) => `strpos(${haystack}, ${needle}) > 0`,
  migrationsTable: 'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)',
  jsonArray: (items) => `json_build_array(${items.join(', ')})`,
  jsonAgg: (expr, orderBy) => `json_agg(${expr}${orderBy ? ` ORDER BY ${orderBy}` : ''})`,
  jsonNested: (subquery) => subquery,
  inIdList: (column) => `${column} = ANY(?::bigint[])`,
  writableCtes: true,
  idList: (ids) => `{${ids.map((id) => String(Math.trunc(id))).join(',')}}`,
};

/** A signed 64-bit advisory lock key for a name, as a decimal string. */
function advisoryKey(name: string): string {
  return createHash('sha256').update(`tagtrail:${name}`).digest().readBigInt64BE(0).toString();
}

const WRITE_LOCK = advisoryKey('catalog-writes');

/**
 * q.lock of an alongside transaction: each call above the levels of the calls before it; the keys
 * of one call in (level, advisory key) order, exclusive where any request of the key is, in one
 * statement. The order is what rules out deadlocks between these locks (LOCK_LEVELS).
 */
function lockerFor(client: pg.PoolClient, fail: (what: string, err: unknown) => unknown): NonNullable<Queryable['lock']> {
  let taken = -1;
  return async (keys: readonly LockKey[]): Promise<void> => {
    if (keys.length === 0) return;
    const ranks = keys.map((k) => LOCK_LEVELS.indexOf(k.level));
    if (Math.min(...ranks) <= taken) throw new Error('catalog locks taken out of their order');
    taken = Math.max(...ranks);
    const wanted = new Map<string, { rank: number; id: bigint; exclusive: boolean }>();
    keys.forEach((k, i) => {
      const name = `${k.level}:${k.key}`;
      const was = wanted.get(name);
      wanted.set(name, { rank: ranks[i]!, id: BigInt(advisoryKey(name)), exclusive: (was?.exclusive ?? false) || k.exclusive });
    });
    const sorted = [...wanted.values()].sort((a, b) => a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    try {
      // The subquery fixes the order the locks are taken in.
      await client.query(
        `SELECT count(CASE WHEN s.x THEN pg_advisory_xact_lock(s.k) ELSE pg_advisory_xact_lock_shared(s.k) END)
         FROM (SELECT u.k, u.x FROM unnest($1::bigint[], $2::boolean[]) WITH ORDINALITY AS u(k, x, n) ORDER BY u.n) s`,
        [sorted.map((l) => l.id.toString()), sorted.map((l) => l.exclusive)],
      );
    } catch (err) {
      throw fail('catalog lock failed', err);
    }
  };
}

/** `?` placeholders → `$1, $2, …` (the shared SQL has no `?` inside literals). */
const numbered = new Map<string, string>();
function toPg(sql: string): string {
  let out = numbered.get(sql);
  if (out === undefined) {
    let n = 0;
    out = sql.replace(/\?/g, () => `$${++n}`);
    if (numbered.size > 1000) numbered.clear();
    numbered.set(sql, out);
  }
  return out;
}

/**
 * At most this many statement texts are prepared on their own: each connection keeps the plans
 * of those it ran (about 75 KB each), and statements of many shapes must not make that grow
 * without end. Webhook ingest prepares about 20, a sync about 70. Statements asked to be
 * prepared (a fixed few in the code) are always, so texts seen first cannot take their place.
 */
export const PREPARED_TEXTS = 200;
/**
 * At most this many texts of one shape (the same statement with an IN list or multi-row VALUES
 * of another length) are prepared on their own: the lengths a crawl's reconciliations send (each
 * length to 500 comes back, in some repository) would otherwise fill PREPARED_TEXTS for the
 * process's life, and no statement seen after them, the event path's too, would be prepared.
 */
export const PREPARED_PER_SHAPE = 8;
const names = new Map<string, string>();
/** Texts prepared on their own, by shape. */
const namedOfShape = new Map<string, number>();
/** Texts sent once, unprepared: the second sending prepares one (within the bounds above). */
const sentOnce = new Set<string>();
/** Texts that stay unprepared, their shape having PREPARED_PER_SHAPE prepared already: not shaped again on every sending. */
const unpreparedShapes = new Set<string>();

/** A text with its lists of placeholders, and its runs of like rows (a row's casts too), each cut to one. */
function shapeOf(text: string): string {
  return text
    .replace(/\$\d+/g, () => '$')
    .replace(/\$(?:\s*,\s*\$)+/g, () => '$')
    .replace(/(\((?:[^()]|\([^()]*\))*\))(?:\s*,\s*\1)+/g, (_run, row: string) => row);
}

/**
 * A statement to send. In a write transaction, one sent before (or asked to be prepared) gets a
 * name from its text, so each connection parses and plans it once and then only binds and
 * executes it: the event path's statements are large CTEs, and planning them on every call cost
 * PostgreSQL about a third of a new manifest's write. Those look rows up by key, so a generic plan
 * (which PostgreSQL may pick for a prepared statement after five runs) serves them as well. Reads
 * outside a transaction are prepared only when asked: a search's best plan can depend on its
 * values. A statement sent once stays unnamed.
 */
export function statement(sql: string, params: readonly Param[], options: QueryOptions | undefined, inWrite: boolean): pg.QueryConfig {
  const text = toPg(sql);
  const asked = options?.prepare === true;
  if (!inWrite && !asked) return { text, values: params as unknown[] };
  let name = names.get(text);
  if (name === undefined) {
    // Without parameters, pg sends the text as a simple query, which may hold several commands (a migration's): never named.
    if (params.length === 0 && !asked) return { text };
    if (!asked) {
      if (unpreparedShapes.has(text)) return { text, values: params as unknown[] };
      if (!sentOnce.has(text) || names.size >= PREPARED_TEXTS) {
        if (sentOnce.size >= 10 * PREPARED_TEXTS) sentOnce.clear();
        sentOnce.add(text);
        return { text, values: params as unknown[] };
      }
      const shape = shapeOf(text);
      const ofShape = namedOfShape.get(shape) ?? 0;
      if (ofShape >= PREPARED_PER_SHAPE) {
        sentOnce.delete(text);
        if (unpreparedShapes.size >= 10 * PREPARED_TEXTS) unpreparedShapes.clear();
        unpreparedShapes.add(text);
        return { text, values: params as unknown[] };
      }
      namedOfShape.set(shape, ofShape + 1);
    }
    sentOnce.delete(text);
    name = `tagtrail_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
    names.set(text, name);
  }
  return { name, text, values: params as unknown[] };
}

function pgCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

class PostgresDriver implements Driver {
  readonly dialect = POSTGRES_DIALECT;
  private readonly pool: pg.Pool;
  /**
   * Writes in progress, each holding a pooled connection (waiting on the write lock, too): fewer
   * than the pool's, so reads always find a connection while events pour in.
   */
  private readonly writers = createLimiter(POOL_SIZE - READ_CONNECTIONS);
  private readonly secrets: string[];
  private readonly shownUrl: string;
  /** Analyzes the tables a fast-growing catalog outgrew (pg-statistics.ts). */
  private readonly statistics: StatisticsKeeper;

  constructor(url: string) {
    this.shownUrl = redactDatabaseUrl(url);
    this.secrets = databaseUrlSecrets(url);
    const parsers = pg.types;
    this.pool = new pg.Pool({
      connectionString: url,
      max: POOL_SIZE,
      application_name: 'tagtrail',
      // bigint columns (times in ms, ids, counts) as numbers: all stay below 2^53.
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : parsers.getTypeParser(oid, format as 'text')) as typeof parsers.getTypeParser,
      },
    });
    // An idle connection dropped by the server must not crash the process; the next query reports it.
    this.pool.on('error', () => undefined);
    this.statistics = new StatisticsKeeper({
      query: async (sql, params) => {
        // A simple query of several statements answers with one result each (pg's types say one).
        const result = (await this.pool.query(sql, params as unknown[] | undefined)) as pg.QueryResult | pg.QueryResult[];
        return (Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows) as Record<string, unknown>[];
      },
    });
  }

  private redact(s: string): string {
    let out = s;
    for (const secret of this.secrets) if (secret) out = out.split(secret).join('***');
    return out;
  }

  private error(what: string, err: unknown): unknown {
    if (isTagtrailError(err)) return err;
    const message = this.redact(err instanceof Error ? err.message : String(err));
    const code = pgCode(err);
    // No SQLSTATE (network), or connection classes 08, 28 (auth) and 3D (no such database): say where.
    const sqlstate = code !== undefined && /^[0-9A-Z]{5}$/.test(code);
    const where = !sqlstate || /^(08|28|3D)/.test(code) ? ` (${this.shownUrl})` : '';
    const leaks = err instanceof Error && this.secrets.some((s) => s && (`${err.message}${err.stack ?? ''}`.includes(s)));
    return new StoreError(`${what}${where}: ${message}`, leaks ? {} : { cause: err });
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw this.error('cannot connect to the catalog database', err);
    }
  }

  private static queryable(client: pg.PoolClient, fail: (what: string, err: unknown) => unknown): Queryable {
    return {
      dialect: POSTGRES_DIALECT,
      all: async <T>(sql: string, params: readonly Param[] = [], options?: QueryOptions): Promise<T[]> => {
        try {
          return (await client.query(statement(sql, params, options, true))).rows as T[];
        } catch (err) {
          throw fail('catalog query failed', err);
        }
      },
      run: async (sql: string, params: readonly Param[] = []): Promise<number> => {
        try {
          return (await client.query(statement(sql, params, undefined, true))).rowCount ?? 0;
        } catch (err) {
          throw fail('catalog update failed', err);
        }
      },
    };
  }

  async all<T>(sql: string, params: readonly Param[] = [], options?: QueryOptions): Promise<T[]> {
    try {
      return (await this.pool.query(statement(sql, params, options, false))).rows as T[];
    } catch (err) {
      throw this.error('catalog query failed', err);
    }
  }

  async run(sql: string, params: readonly Param[] = []): Promise<number> {
    try {
      return (await this.pool.query(statement(sql, params, undefined, false))).rowCount ?? 0;
    } catch (err) {
      throw this.error('catalog update failed', err);
    }
  }

  write<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.writers(() => this.transaction(fn, false));
  }

  writeAlongside<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.writers(() => this.transaction(fn, true));
  }

  /**
   * One write transaction, retried on a serialization failure or a deadlock. Alone, it holds the
   * catalog-wide lock exclusively; alongside, shared, and it locks what it touches through
   * q.lock. An alongside transaction whose locks went stale (LocksOutdated) runs again alone.
   */
  private async transaction<T>(fn: (q: Queryable) => Promise<T>, alongside: boolean): Promise<T> {
    const client = await this.connect();
    let broken: Error | undefined;
    let shared = alongside;
    try {
      for (let attempt = 1; ; attempt++) {
        // Errors keep their SQLSTATE through the wrapper via `cause`, checked for retries below.
        const raw: { err?: unknown } = {};
        const fail = (what: string, err: unknown): unknown => {
          raw.err = err;
          return this.error(what, err);
        };
        const q = PostgresDriver.queryable(client, fail);
        if (shared) q.lock = lockerFor(client, fail);
        try {
          // One round trip: the key is a constant of this module.
          await client.query(`BEGIN; SELECT ${shared ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock'}(${WRITE_LOCK})`);
          const result = await fn(q);
          await client.query('COMMIT');
          this.statistics.wrote();
          return result;
        } catch (err) {
          try {
            await client.query('ROLLBACK');
          } catch (rollbackErr) {
            broken = rollbackErr as Error;
            throw this.error('catalog transaction failed', err);
          }
          if (err instanceof LocksOutdated && shared) {
            shared = false;
            continue;
          }
          const code = pgCode(raw.err ?? err);
          if (code !== undefined && RETRYABLE.has(code) && attempt < RETRIES) {
            await new Promise((r) => setTimeout(r, 10 * attempt + Math.random() * 20));
            continue;
          }
          throw this.error('catalog transaction failed', err);
        }
      }
    } finally {
      client.release(broken);
    }
  }

  async explain(sql: string, params: readonly Param[], options: ExplainOptions): Promise<string[]> {
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      if (options.disableSeqScan) await client.query('SET LOCAL enable_seqscan = off');
      const rows = (await client.query(`EXPLAIN ${toPg(sql)}`, params as unknown[])).rows as { 'QUERY PLAN': string }[];
      await client.query('ROLLBACK');
      return rows.map((r) => r['QUERY PLAN']);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw this.error('cannot explain the search', err);
    } finally {
      client.release();
    }
  }

  async withLock<T>(name: string, fn: () => Promise<T>): Promise<LockResult<T>> {
    const key = advisoryKey(`lock:${name}`);
    const client = await this.connect();
    let ok: boolean;
    try {
      ok = (await client.query('SELECT pg_try_advisory_lock($1) AS ok', [key])).rows[0]?.ok === true;
    } catch (err) {
      client.release(err as Error);
      throw this.error(`cannot take the lock ${JSON.stringify(name)}`, err);
    }
    if (!ok) {
      client.release();
      return { ran: false };
    }
    try {
      return { ran: true, value: await fn() };
    } finally {
      // If unlocking fails, drop the connection: closing the session releases the lock.
      await client.query('SELECT pg_advisory_unlock($1)', [key]).then(
        () => client.release(),
        (err: Error) => client.release(err),
      );
    }
  }

  async close(): Promise<void> {
    await this.statistics.close();
    await this.pool.end();
  }
}

/** A PostgreSQL catalog at `url` (postgres:// or postgresql://). Connects lazily; not migrated yet. */
export function openPostgresStore(url: string): SqlStore {
  return new SqlStore(new PostgresDriver(url), POSTGRES_MIGRATIONS);
}
