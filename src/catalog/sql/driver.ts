// The seam between the catalog's SQL and the two databases: what a statement runs on (Queryable,
// Driver) and what differs between SQLite and PostgreSQL (Dialect); sqlite.ts and postgres.ts
// implement it. Statements use `?` placeholders (the PostgreSQL driver numbers them) and only SQL
// both accept. Also the small functions every statement builder shares.
import { type Annotations, emptyAnnotations } from '../../oci/annotations.js';
import type { ExplainOptions, LockResult } from '../types.js';

export type Param = string | number | null | Buffer;
export type Row = Record<string, unknown>;

export interface QueryOptions {
  /**
   * A statement run often with the same text: PostgreSQL keeps it prepared on each connection
   * (planned once, then executed by name) from its first sending. Its driver prepares the other
   * statements with parameters of a write transaction from their second (postgres.ts). SQLite
   * prepares and keeps every statement anyway.
   */
  prepare?: boolean;
}

export interface Queryable {
  /** The database's dialect, where the statements may take its shortcuts (see Dialect.writableCtes). */
  readonly dialect?: Dialect;
  all<T = Row>(sql: string, params?: readonly Param[], options?: QueryOptions): Promise<T[]>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: readonly Param[]): Promise<number>;
  /**
   * Set only inside a transaction of Driver.writeAlongside that runs beside other writers: takes
   * transaction-scoped locks on these keys (see LockLevel), in one go. Absent where the
   * transaction writes alone (SQLite, or the catalog-wide lock): then nothing needs locking.
   */
  lock?(keys: readonly LockKey[]): Promise<void>;
}

/**
 * The levels of the locks writers that run side by side take, in the order a transaction must
 * take them: each call to q.lock takes levels above those of the calls before it, and the driver
 * takes the keys of one call in (level, key) order. With every waiter waiting only on a key above
 * all it holds, no two transactions can wait on each other.
 *
 * - evidence: what a tag's search terms and an image's derived columns are built from, per
 *   manifest (`m:<digest>`) and per config (`c:<digest>`); shared to read, exclusive to change.
 * - tag: one tag's state, history and terms (`<repository>\0<tag>`), exclusive.
 *
 * The insights aggregates need no advisory lock: they change by increments, which commute, just
 * before the commit (insight-weeks.ts). Their rows are taken in key order within one statement,
 * not across statements (on PostgreSQL they go with the repository counters in one statement,
 * runTogether, in no set order), so two transactions can still wait on each other's rows there:
 * PostgreSQL then ends one with a deadlock error, and the transaction is run again (postgres.ts).
 */
export const LOCK_LEVELS = ['evidence', 'tag'] as const;
type LockLevel = (typeof LOCK_LEVELS)[number];

export interface LockKey {
  level: LockLevel;
  key: string;
  exclusive: boolean;
}

/**
 * Thrown inside a writeAlongside transaction whose locks no longer cover what it must read (a
 * manifest it depends on appeared between reading its dependencies and locking them): the
 * driver runs it again alone, under the catalog-wide lock.
 */
export class LocksOutdated extends Error {
  constructor() {
    super('the locks of this transaction no longer cover what it reads');
  }
}

export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** The two-argument max and min: max/min in SQLite, GREATEST/LEAST in PostgreSQL. */
  readonly greatest: string;
  /** SQL true when text expression `haystack` contains `needle`, with no pattern characters. */
  contains(haystack: string, needle: string): string;
  /** The DDL of the migrations ledger. */
  readonly migrationsTable: string;
  /** A JSON array of the SQL expressions. */
  jsonArray(items: readonly string[]): string;
  /** The aggregate: a JSON array of expr over the rows, in this order; NULL or [] when there are none. */
  jsonAgg(expr: string, orderBy?: string): string;
  /** A JSON value from a subquery, to nest inside jsonArray. */
  jsonNested(subquery: string): string;
  /** SQL true when `column` is one of the ids of a list bound as one parameter, encoded by idList. */
  inIdList(column: string): string;
  idList(ids: readonly number[]): string;
  /**
   * Whether a statement may carry other writes as data-modifying CTEs (WITH w AS (INSERT ...)
   * ...): PostgreSQL, where each statement is a network round trip; SQLite has none.
   */
  readonly writableCtes: boolean;
}

export interface Driver extends Queryable {
  readonly dialect: Dialect;
  /** A write transaction, serialised with every other writer of the database (see each driver). */
  write<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * A write transaction that runs beside other writeAlongside transactions, each declaring what
   * it reads and changes through q.lock; excluded only by write(). Drivers with one writer
   * anyway (SQLite) leave it out, and the store uses write().
   */
  writeAlongside?<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  explain(sql: string, params: readonly Param[], options: ExplainOptions): Promise<string[]>;
  withLock<T>(name: string, fn: () => Promise<T>): Promise<LockResult<T>>;
  close(): Promise<void>;
}

/** Rows of an IN list per statement. */
export const IN_CHUNK = 500;
/** Bound parameters per statement: well inside SQLite's 32766 and PostgreSQL's 65535. */
export const MAX_PARAMS = 4000;

// ---------------------------------------------------------------- small functions

export function marks(n: number): string {
  return new Array(n).fill('?').join(', ');
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Text as both databases can store it: NUL and lone surrogates become U+FFFD. */
export function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

export function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

export function dateOrNull(v: unknown): Date | null {
  return v === null || v === undefined ? null : new Date(num(v));
}

export function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export function cleanRecord(a: Annotations): Annotations {
  const out = emptyAnnotations();
  for (const [k, v] of Object.entries(a)) if (typeof v === 'string') out[clean(k)] = clean(v);
  return out;
}

export async function insertMany(q: Queryable, table: string, columns: readonly string[], rows: readonly Param[][]): Promise<void> {
  for (const s of insertStatements(table, columns, rows)) await q.run(s.sql, s.params);
}

export interface Statement {
  sql: string;
  params: readonly Param[];
}

/** Parameters of one statement that writes several together: inside PostgreSQL's 65535. */
const MAX_COMBINED_PARAMS = 8 * MAX_PARAMS;

/**
 * Runs these writes (INSERT, UPDATE or DELETE without RETURNING). Where the dialect has writable
 * CTEs (PostgreSQL) they go as one statement, in one round trip, and run in no set order: all see
 * the database as it was before any of them and none sees another's changes. So none may read what
 * another writes, no two may change one row, and nothing may depend on their order (row locks
 * included). Elsewhere they run one by one, as listed.
 * https://www.postgresql.org/docs/15/queries-with.html#QUERIES-WITH-MODIFYING
 */
export async function runTogether(q: Queryable, d: Dialect, statements: readonly Statement[]): Promise<void> {
  if (!d.writableCtes) {
    for (const s of statements) await q.run(s.sql, s.params);
    return;
  }
  let group: Statement[] = [];
  let params = 0;
  const flush = async (): Promise<void> => {
    if (group.length === 0) return;
    const last = group[group.length - 1]!;
    const ctes = group.slice(0, -1).map((s, i) => `w${i} AS (${s.sql})`);
    await q.run(ctes.length === 0 ? last.sql : `WITH ${ctes.join(', ')} ${last.sql}`, group.flatMap((s) => s.params));
    group = [];
    params = 0;
  };
  for (const s of statements) {
    if (params + s.params.length > MAX_COMBINED_PARAMS) await flush();
    group.push(s);
    params += s.params.length;
  }
  await flush();
}

/** insertMany's statements, for runTogether. */
export function insertStatements(table: string, columns: readonly string[], rows: readonly Param[][]): Statement[] {
  const tuple = `(${marks(columns.length)})`;
  return chunks(rows, Math.max(1, Math.floor(MAX_PARAMS / columns.length))).map((part) => ({
    sql: `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${part.map(() => tuple).join(', ')}`,
    params: part.flat(),
  }));
}

/** A JSON column as read back: PostgreSQL's driver parses json, SQLite returns the text. */
export function jsonColumn(v: unknown): unknown[] {
  if (v === null || v === undefined) return [];
  const parsed: unknown = typeof v === 'string' ? JSON.parse(v) : v;
  return Array.isArray(parsed) ? parsed : [];
}

export function pairsOf(v: unknown): Annotations {
  const out = emptyAnnotations();
  for (const p of jsonColumn(v)) {
    const [k, val] = p as [unknown, unknown];
    if (typeof k === 'string' && typeof val === 'string') out[k] = val;
  }
  return out;
}

