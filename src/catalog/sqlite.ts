// The SQLite dialect (better-sqlite3): the embedded default.
//
// better-sqlite3 is synchronous: run on the main thread, every statement would hold the event loop
// (and so every request of serve) while SQLite works. So each connection lives in a worker thread
// (sqlite-thread.ts) and statements go to it as messages. Writes share one connection: the shared
// store code separates the statements of a transaction by awaits, so every write goes through a
// queue, and a transaction holds it from BEGIN to COMMIT. Reads outside a transaction use a second
// connection, so they never wait behind a transaction; WAL gives each statement a committed snapshot. Across processes, write transactions are BEGIN IMMEDIATE: they
// take SQLite's write lock up front (waiting up to the busy timeout) instead of failing half-way.
// WAL lets readers in other processes go on meanwhile. On the write thread, event-path writes that
// wait for the connection commit as one group (writeGroup), each in a savepoint of its own.
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { StoreError, isTagtrailError } from '../errors.js';
import { SQLITE_MIGRATIONS } from './migrations/sqlite.js';
import type { Dialect, Driver, Param, Queryable } from './sql/driver.js';
import { SqliteThread, THREAD_METHODS, type ThreadOptions, WRITES } from './sqlite-thread.js';
import { SqlStore } from './sql/store.js';
import type { ExplainOptions, LockResult } from './types.js';

/** How long a statement waits on another connection's lock (rare in WAL outside BEGIN IMMEDIATE). */
const BUSY_TIMEOUT_MS = 5_000;
/** How long a write transaction waits, without blocking the event loop, for the write lock. */
const WRITE_WAIT_MS = 30_000;
/**
 * A lock row outlives a crashed holder by at most this long; a live holder renews it. A holder on
 * the same machine (same host name and PID namespace) that is no longer running loses the lock at
 * once: a `kill -9`'d sync does not keep the next one out for a minute.
 */
const SQLITE_LOCK_TTL_MS = 60_000;

/** This process as a lock owner prefix: host name, PID namespace (Linux) and PID. */
function lockHolder(): string {
  let ns = '';
  try {
    ns = readlinkSync('/proc/self/ns/pid');
  } catch {
    ns = '';
  }
  return `${hostname()}|${ns}|${process.pid}|`;
}

/** True when owner names a process of this machine and PID namespace that no longer runs. */
function lockHolderGone(owner: string): boolean {
  const parts = owner.split('|');
  if (parts.length !== 4) return false;
  const [host, ns, pidText] = parts as [string, string, string, string];
  const self = lockHolder().split('|');
  if (host !== self[0] || ns !== self[1] || !/^[1-9][0-9]{0,9}$/.test(pidText)) return false;
  const pid = Number(pidText);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as { code?: unknown }).code === 'ESRCH';
  }
}

const SQLITE_DIALECT: Dialect = {
  name: 'sqlite',
  greatest: 'max',
  contains: (haystack, needle) => `instr(${haystack}, ${needle}) > 0`,
  migrationsTable: 'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  jsonArray: (items) => `json_array(${items.join(', ')})`,
  jsonAgg: (expr, orderBy) => `json_group_array(${expr}${orderBy ? ` ORDER BY ${orderBy}` : ''})`,
  jsonNested: (subquery) => `json(${subquery})`,
  inIdList: (column) => `${column} IN (SELECT value FROM json_each(?))`,
  writableCtes: false,
  idList: (ids) => JSON.stringify(ids),
};

const STATEMENT_CACHE = 500;

function storeError(what: string, err: unknown): unknown {
  if (isTagtrailError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  const busy = (err as { code?: unknown })?.code === 'SQLITE_BUSY';
  return new StoreError(`${what}: ${message}`, {
    cause: err,
    ...(busy ? { hint: 'another tagtrail process holds the catalog database for writing; retry, or use PostgreSQL for several writers' } : {}),
  });
}

/** A catalog file, and its -wal and -shm files, are readable by their owner only: the catalog may index private images. */
const CATALOG_FILE_MODE = 0o600;

/** Creates a new catalog file with CATALOG_FILE_MODE before SQLite opens it (SQLite creates its -wal and -shm with the same mode). */
function createPrivate(path: string): void {
  if (path === ':memory:' || path.startsWith('file:') || existsSync(path)) return;
  try {
    closeSync(openSync(path, 'wx', CATALOG_FILE_MODE));
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'EEXIST') throw err;
  }
}

/** The -wal and -shm of a catalog created here, made private too (in case an older file mode was inherited). */
function privateCompanions(path: string): void {
  for (const suffix of ['-wal', '-shm']) {
    try {
      chmodSync(`${path}${suffix}`, CATALOG_FILE_MODE);
    } catch {
      // Not there (yet): SQLite creates it with the database file's mode.
    }
  }
}

/** The page cache of a connection opened without `cacheMiB`: index pages of a large catalog stay in memory for search. */
const SQLITE_CACHE_MIB = 64;

/**
 * The WAL is copied back into the catalog file (checkpointed) once it holds this many pages: 32
 * MiB, where SQLite's default is 1,000 pages (4 MiB). A new manifest alone writes about 30 pages, so by
 * default about every 30th event's COMMIT also checkpointed, with its two fsyncs, on the write thread
 * every event waits for. Less often, a page written by many events (an index's upper pages, a
 * repository's counters) is copied once for all of them: webhook ingest of 3,000 new manifests
 * took 6 to 8% more events a second (bench/catalog/webhook-profile.ts, each way twice, same
 * machine).
 */
export const WAL_CHECKPOINT_PAGES = 8192;

/**
 * The WAL file is cut back to this many pages after a checkpoint: the threshold and a quarter, so
 * a WAL that only reached it (with the transaction that crossed it) is reused as it is, not cut
 * and grown again after every checkpoint; one a long read or a large transaction grew is cut.
 */
const WAL_KEPT_PAGES = WAL_CHECKPOINT_PAGES + WAL_CHECKPOINT_PAGES / 4;

/** The size of a WAL file holding `frames` pages: a 32-byte header, then each page behind a 24-byte frame header. */
export function walBytes(frames: number, pageSize: number): number {
  return 32 + frames * (24 + pageSize);
}

export interface SqliteStoreOptions {
  /**
   * SQLite's page cache, MiB (native memory of this process). Search wants it large; a crawl,
   * which writes each page a few times and reads little back, does as well with a few MiB and
   * then uses the same memory whatever the catalog's size.
   */
  cacheMiB?: number;
}

/** One connection, as the driver uses it: on this thread (LocalConnection) or on its own (SqliteThread). */
interface Connection {
  readonly opened: Promise<void>;
  all<T>(sql: string, params: readonly Param[], readOnly?: boolean): Promise<T[] | typeof WRITES>;
  run(sql: string, params: readonly Param[]): Promise<number>;
  control(op: 'begin' | 'commit' | 'rollback'): Promise<void>;
  close(): Promise<void>;
}

/** A connection on the calling thread: a connection thread's own (sqlite-worker.ts). */
class LocalConnection implements Connection {
  readonly opened = Promise.resolve();
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly options: ThreadOptions) {
    const onFile = options.path !== ':memory:' && !options.path.startsWith('file:');
    this.db = new Database(options.path, { timeout: options.busyTimeoutMs, fileMustExist: onFile && options.fileMustExist === true });
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('synchronous = NORMAL');
    // A negative cache_size is in KiB. Memory-mapped I/O stays off (pages read through it would
    // count in this process's memory too) and temporary tables go to files (the build's default).
    this.db.pragma(`cache_size = -${options.cacheMiB * 1024}`);
    this.db.pragma('mmap_size = 0');
    this.db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    this.db.pragma(`journal_size_limit = ${walBytes(WAL_KEPT_PAGES, this.db.pragma('page_size', { simple: true }) as number)}`);
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      if (this.statements.size >= STATEMENT_CACHE) this.statements.clear();
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  async all<T>(sql: string, params: readonly Param[], readOnly = false): Promise<T[] | typeof WRITES> {
    const s = this.statement(sql);
    return readOnly && !s.readonly ? WRITES : (s.all(...params) as T[]);
  }

  async run(sql: string, params: readonly Param[]): Promise<number> {
    return this.statement(sql).run(...params).changes;
  }

  async control(op: 'begin' | 'commit' | 'rollback'): Promise<void> {
    if (op === 'begin') {
      // No busy wait (it would block this thread's loop): SqliteDriver.begin retries on a timer.
      this.statement('PRAGMA busy_timeout = 0').get();
      try {
        this.statement('BEGIN IMMEDIATE').run();
      } finally {
        this.statement(`PRAGMA busy_timeout = ${this.options.busyTimeoutMs}`).get();
      }
    } else if (op === 'commit') {
      this.statement('COMMIT').run();
    } else if (this.db.inTransaction) {
      this.statement('ROLLBACK').run();
    }
  }

  /** A write of a group inside the group's transaction (SqliteDriver.writeGroup): it alone is undone when it fails. */
  savepoint(op: 'begin' | 'release' | 'rollback'): void {
    if (op === 'begin') {
      this.statement('SAVEPOINT grouped').run();
    } else if (op === 'release') {
      this.statement('RELEASE grouped').run();
    } else {
      this.statement('ROLLBACK TO grouped').run();
      this.statement('RELEASE grouped').run();
    }
  }

  /** False once SQLite ended the transaction itself (a full disk, an I/O error): what it held is gone. */
  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  async close(): Promise<void> {
    this.statements.clear();
    this.db.close();
  }
}

class SqliteDriver implements Driver {
  readonly dialect = SQLITE_DIALECT;
  /** The connection every write goes through, in the order of `queue`. */
  private writeConnection: Connection;
  /** The connection when it is on this thread (the write thread's own driver): it runs groups of writes (writeGroup). */
  private readonly local: LocalConnection | undefined;
  /** Reads outside a transaction, on a connection of their own (WAL): they never wait behind a writer's transaction. Started at the first read. */
  private reader: Promise<Connection> | undefined;
  /**
   * A connection thread's options where a second connection reaches the same catalog (a file): for
   * the read thread, and for a write thread that replaces an ended one. Undefined in memory (the
   * catalog lives on one connection) and on a connection thread itself.
   */
  private readonly fileThreads: ThreadOptions | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** threads: the write and read connections in worker threads (for the main thread); local: one connection on this thread (for the write thread). */
  constructor(
    private readonly path: string,
    options: SqliteStoreOptions,
    where: 'threads' | 'local',
    /** The local connection opens only an existing file (a connection thread's; see ThreadOptions). */
    fileMustExist = false,
  ) {
    const cacheMiB = options.cacheMiB ?? SQLITE_CACHE_MIB;
    if (!Number.isInteger(cacheMiB) || cacheMiB < 1 || cacheMiB > 4096) throw new StoreError(`SQLite cache of ${cacheMiB} MiB: not an integer from 1 to 4096`);
    const thread: ThreadOptions = { path, busyTimeoutMs: BUSY_TIMEOUT_MS, cacheMiB, ...(where === 'threads' || fileMustExist ? { fileMustExist: true } : {}) };
    if (where === 'local') {
      this.local = new LocalConnection(thread);
      this.writeConnection = this.local;
      return;
    }
    this.local = undefined;
    // Opened here first, on this thread: a catalog that cannot be opened fails at once, and the
    // file, its mode and WAL are in place before the connection threads open it.
    try {
      const created = path !== ':memory:' && !existsSync(path);
      createPrivate(path);
      const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
      try {
        if (path !== ':memory:') db.pragma('journal_mode = WAL');
      } finally {
        db.close();
      }
      if (created) privateCompanions(path);
    } catch (err) {
      throw storeError(`cannot open the SQLite catalog ${path}`, err);
    }
    this.writeConnection = SqliteThread.start('writer', thread);
    // An in-memory database (or a URI, which may name one) exists on one connection only.
    this.fileThreads = path === ':memory:' || path.startsWith('file:') ? undefined : thread;
  }

  /** The write connection as it is now (a thread that ended stays until the next call or transaction renews it). */
  get writer(): Connection {
    return this.writeConnection;
  }

  /**
   * The write connection for a call or transaction about to start: a thread that ended (an error
   * that escaped it, or its memory limit) is replaced by a new one on the same file, so one bad
   * moment does not leave serve without a catalog until it is restarted. What the ended thread had
   * not committed is gone (SQLite keeps only committed transactions), and the calls that waited on
   * it have failed. Never in the middle of a transaction: a transaction keeps the connection it
   * began on (transaction()), so its later statements fail instead of running without it.
   */
  private liveWriter(): Connection {
    const current = this.writeConnection;
    if (this.fileThreads && !this.closed && current instanceof SqliteThread && current.ended) {
      void current.close().catch(() => undefined);
      this.writeConnection = SqliteThread.start('writer', this.fileThreads);
    }
    return this.writeConnection;
  }

  /** The write thread for a store method run whole there (SqliteStore). */
  writeThread(): SqliteThread {
    if (this.closed) throw new StoreError(`the SQLite catalog ${this.path} is closed`);
    return this.liveWriter() as SqliteThread;
  }

  /** Runs fn when every earlier use of the write connection is done; on a live connection unless `renew` is false (close). */
  private exclusive<T>(fn: () => T | Promise<T>, renew = true): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new StoreError(`the SQLite catalog ${this.path} is closed`);
      if (renew) this.liveWriter();
      return fn();
    });
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Statements on one write connection: inside a transaction, or already queued. */
  private on(connection: () => Connection): Queryable {
    return {
      all: async <T>(sql: string, params: readonly Param[] = []): Promise<T[]> => {
        try {
          return (await connection().all<T>(sql, params)) as T[];
        } catch (err) {
          throw storeError('catalog query failed', err);
        }
      },
      run: async (sql: string, params: readonly Param[] = []): Promise<number> => {
        try {
          return await connection().run(sql, params);
        } catch (err) {
          throw storeError('catalog update failed', err);
        }
      },
    };
  }

  /** Statements on the write connection as it is (single statements in turn, and a group's savepoints on the write thread). */
  private readonly direct: Queryable = this.on(() => this.writeConnection);

  /** The read thread once started; a new one replaces it when it has ended (as liveWriter does). */
  private readThread: SqliteThread | undefined;

  /** The read connection's thread; undefined for an in-memory catalog (one connection). */
  readConnection(): Promise<Connection> | undefined {
    // Closed: no thread started for a read (the write queue refuses it).
    if (!this.fileThreads || this.closed) return undefined;
    const options = this.fileThreads;
    if (this.readThread?.ended) {
      void this.readThread.close().catch(() => undefined);
      this.readThread = undefined;
      this.reader = undefined;
    }
    if (!this.reader) {
      // After the write thread (renewed if it ended: a write thread that could not open the file must not hold reads back until a write comes).
      const reader = this.liveWriter().opened.then(() => (this.readThread = SqliteThread.start('reader', options)));
      // A write thread that could not open the file fails the reads of that moment only: the next read starts over.
      reader.catch(() => {
        if (this.reader === reader) this.reader = undefined;
      });
      this.reader = reader;
    }
    return this.reader;
  }

  async all<T>(sql: string, params: readonly Param[] = []): Promise<T[]> {
    const reader = this.readConnection();
    if (reader && !this.closed) {
      let rows: T[] | typeof WRITES;
      try {
        rows = await (await reader).all<T>(sql, params, true);
      } catch (err) {
        throw storeError('catalog query failed', err);
      }
      if (rows !== WRITES) return rows;
    }
    // A statement that writes (or no separate reader): in turn with the other writes.
    return this.exclusive(() => this.direct.all<T>(sql, params));
  }

  run(sql: string, params?: readonly Param[]): Promise<number> {
    return this.exclusive(() => this.direct.run(sql, params));
  }

  /**
   * BEGIN IMMEDIATE, retried on a timer while another connection (of any process) holds the write
   * lock: SQLite's own busy wait would block the thread's loop (and so another connection of this
   * process that holds the lock). On the write thread's side, its own driver does this.
   */
  private async begin(connection: Connection): Promise<void> {
    const deadline = Date.now() + WRITE_WAIT_MS;
    for (let pause = 2; ; pause = Math.min(pause * 2, 100)) {
      try {
        await connection.control('begin');
        return;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw storeError('cannot start a catalog transaction', err);
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  write<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.exclusive(() => this.transaction(fn));
  }

  /** A transaction on the write connection, which the caller holds already. */
  private async transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    // The connection it begins on, whatever replaces an ended one meanwhile (liveWriter).
    const connection = this.writeConnection;
    await this.begin(connection);
    try {
      // A Queryable of its own: what a transaction gathers by its Queryable (insight-weeks.ts,
      // repository-counters.ts) dies with it, even when it fails half-way.
      const result = await fn({ dialect: SQLITE_DIALECT, ...this.on(() => connection) });
      await connection.control('commit');
      return result;
    } catch (err) {
      await connection.control('rollback').catch(() => undefined);
      throw storeError('catalog transaction failed', err);
    }
  }

  /** One write of a group, in a savepoint of the group's transaction: its failure undoes it alone. */
  private async savepoint<T>(local: LocalConnection, fn: (q: Queryable) => Promise<T>): Promise<T> {
    local.savepoint('begin');
    try {
      const result = await fn({ dialect: SQLITE_DIALECT, all: this.direct.all, run: this.direct.run });
      local.savepoint('release');
      return result;
    } catch (err) {
      // A transaction SQLite ended itself has no savepoint left; writeGroup sees it and runs each call again alone.
      if (local.inTransaction) local.savepoint('rollback');
      throw storeError('catalog transaction failed', err);
    }
  }

  /**
   * The driver a call of writeGroup runs on: statements on the write connection the group holds,
   * and its writes in savepoints of the group's transaction (`inGroup`) or in transactions of
   * their own (alone).
   */
  private views: { inGroup: Driver; alone: Driver } | undefined;

  private view(write: <T>(fn: (q: Queryable) => Promise<T>) => Promise<T>): Driver {
    const refuse = (): never => {
      throw new StoreError('not available to a write of a group');
    };
    return { dialect: SQLITE_DIALECT, all: this.direct.all, run: this.direct.run, write, explain: refuse, withLock: refuse, close: refuse };
  }

  /**
   * Group commit (the write thread's own driver): the calls, in order, in one transaction, each
   * write of a call in a savepoint of its own, so a call that fails undoes only its own writes, as
   * its own transaction would have; then one COMMIT for all. Each call's outcome is returned only
   * after that COMMIT. Their results are those of the calls run one after another: each sees what
   * the ones before it wrote. Should SQLite end the group's transaction itself (a full disk, an
   * I/O error), or the COMMIT fail, nothing of the group is kept and each call runs again in
   * transactions of its own, as it would have without the group. `take` names the calls when the
   * write connection is free, so calls that arrive while it is busy join the group.
   */
  writeGroup<T>(take: () => readonly ((driver: Driver) => Promise<T>)[]): Promise<PromiseSettledResult<T>[]> {
    const local = this.local;
    if (!local) return Promise.reject(new StoreError('a group of writes runs on the write thread only'));
    return this.exclusive(async () => {
      const calls = take();
      const settle = (p: Promise<T>): Promise<PromiseSettledResult<T>> => p.then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason }));
      this.views ??= { inGroup: this.view((fn) => this.savepoint(local, fn)), alone: this.view((fn) => this.transaction(fn)) };
      const { inGroup, alone } = this.views;
      if (calls.length > 1) {
        await this.begin(local);
        const outcomes: PromiseSettledResult<T>[] = [];
        let kept = true;
        try {
          for (const call of calls) {
            outcomes.push(await settle(call(inGroup)));
            if (!local.inTransaction) {
              kept = false;
              break;
            }
          }
          if (kept) {
            await local.control('commit');
            return outcomes;
          }
        } catch {
          // The COMMIT failed: the calls run again alone, below.
        }
        await local.control('rollback').catch(() => undefined);
      }
      const outcomes: PromiseSettledResult<T>[] = [];
      for (const call of calls) outcomes.push(await settle(call(alone)));
      return outcomes;
    });
  }

  async explain(sql: string, params: readonly Param[], _options: ExplainOptions): Promise<string[]> {
    const rows = await this.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params);
    return rows.map((r) => r.detail);
  }

  /** A row in `locks` with an owner and an expiry, renewed while fn runs. */
  async withLock<T>(name: string, fn: () => Promise<T>): Promise<LockResult<T>> {
    const owner = `${lockHolder()}${randomUUID()}`;
    const acquired = await this.write(async (q) => {
      const now = Date.now();
      const changed = await q.run(
        `INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at WHERE locks.expires_at < ?`,
        [name, owner, now + SQLITE_LOCK_TTL_MS, now],
      );
      if (changed === 1) return true;
      // Held: take it over only from a holder that is gone (killed, crashed) on this machine.
      const [row] = await q.all<{ owner: string }>('SELECT owner FROM locks WHERE name = ?', [name]);
      if (!row || !lockHolderGone(row.owner)) return false;
      return (await q.run('UPDATE locks SET owner = ?, expires_at = ? WHERE name = ? AND owner = ?', [owner, now + SQLITE_LOCK_TTL_MS, name, row.owner])) === 1;
    });
    if (!acquired) return { ran: false };
    const renew = setInterval(() => {
      this.write((q) => q.run('UPDATE locks SET expires_at = ? WHERE name = ? AND owner = ?', [Date.now() + SQLITE_LOCK_TTL_MS, name, owner])).catch(() => undefined);
    }, SQLITE_LOCK_TTL_MS / 3);
    renew.unref();
    try {
      return { ran: true, value: await fn() };
    } finally {
      clearInterval(renew);
      await this.write((q) => q.run('DELETE FROM locks WHERE name = ? AND owner = ?', [name, owner])).catch(() => undefined);
    }
  }

  close(): Promise<void> {
    return this.exclusive(async () => {
      this.closed = true;
      const reader = this.reader;
      await Promise.all([this.writeConnection.close(), reader?.then((r) => r.close(), () => undefined)]);
      // A thread that ended is not replaced only to be closed: the new one might not even open.
    }, false);
  }
}

/** Store methods run whole on a connection's thread (THREAD_METHODS in sqlite-thread.ts): the writes of the event path and of a crawl, and search. */
class SqliteStore extends SqlStore {
  constructor(private readonly threads: SqliteDriver) {
    super(threads, SQLITE_MIGRATIONS);
  }

  private async remote(method: string, args: readonly unknown[]): Promise<unknown> {
    return this.threads.writeThread().call(method, args);
  }

  /** On the read thread; an in-memory catalog has none, and reads here through its one connection. */
  private async read(method: string, args: readonly unknown[], here: () => Promise<unknown>): Promise<unknown> {
    const reader = this.threads.readConnection();
    if (!reader) return here();
    return ((await reader) as SqliteThread).call(method, args);
  }

  // Each method of the thread lists forwards to its thread, with the same arguments and result:
  // the lists are the one place that says which methods run where.
  static {
    type Method = (this: SqliteStore, ...args: unknown[]) => Promise<unknown>;
    const own = SqliteStore.prototype as unknown as Record<string, Method>;
    const base = SqlStore.prototype as unknown as Record<string, Method>;
    for (const method of THREAD_METHODS.writer) {
      own[method] = function (this: SqliteStore, ...args: unknown[]) {
        return this.remote(method, args);
      };
    }
    for (const method of THREAD_METHODS.reader) {
      const here = base[method] as Method;
      own[method] = function (this: SqliteStore, ...args: unknown[]) {
        return this.read(method, args, () => here.apply(this, args));
      };
    }
  }
}

/** Opens (creating if need be) a SQLite catalog; `:memory:` for a throw-away one. Not migrated yet. */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqlStore {
  return new SqliteStore(new SqliteDriver(path, options, 'threads'));
}

/** A store method run by a group of writes (SqliteDriver.writeGroup), on the store it is given. */
export type GroupedCall = (store: SqlStore) => Promise<unknown>;

/** A connection thread's own store (sqlite-worker.ts): one connection, on that thread. */
export function openLocalSqliteStore(options: ThreadOptions): {
  store: SqlStore;
  driver: Driver;
  connection: Connection;
  /** Store methods run as one group commit (SqliteDriver.writeGroup); `take` names them when the connection is free. */
  writeGroup(take: () => readonly GroupedCall[]): Promise<PromiseSettledResult<unknown>[]>;
} {
  const driver = new SqliteDriver(options.path, { cacheMiB: options.cacheMiB }, 'local', options.fileMustExist === true);
  // The store over each view of the driver a group's calls run on (SqlStore keeps no state but its driver).
  const stores = new Map<Driver, SqlStore>();
  const storeOver = (d: Driver): SqlStore => {
    let s = stores.get(d);
    if (!s) {
      s = new SqlStore(d, SQLITE_MIGRATIONS);
      stores.set(d, s);
    }
    return s;
  };
  return {
    store: new SqlStore(driver, SQLITE_MIGRATIONS),
    driver,
    connection: driver.writer,
    writeGroup: (take) => driver.writeGroup(() => take().map((call) => (d: Driver) => call(storeOver(d)))),
  };
}
