// One SQLite connection owned by a worker thread: better-sqlite3 is synchronous, so a statement run
// on the main thread holds the event loop (and every HTTP request of serve) while SQLite works.
// Here the main thread sends a statement as a message and awaits the answer; SQLite's CPU time,
// page reads and commits happen on the worker's thread.
//
// The worker's code is a CommonJS script passed as text (eval): it runs the same from the bundle
// in dist/ and from the TypeScript sources under test, with no separate file to build or ship.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Param } from './sql/driver.js';

export interface ThreadOptions {
  path: string;
  /** better-sqlite3's busy timeout, ms. */
  busyTimeoutMs: number;
  cacheMiB: number;
}

/** What the main thread asks; the worker answers { id, value } or { id, error: { message, code } }. */
type Request =
  | { op: 'all'; sql: string; params: readonly Param[]; readOnly: boolean }
  | { op: 'run'; sql: string; params: readonly Param[] }
  | { op: 'begin' | 'commit' | 'rollback' | 'close' };

/** Marks the answer to an `all` with readOnly set whose statement writes: run it on the write connection. */
export const WRITES = Symbol('writes');

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const { path, busyTimeoutMs, cacheMiB, statementCache } = workerData;
const statements = new Map();
let db;
let openError;
try {
  db = new Database(path, { timeout: busyTimeoutMs });
  db.pragma('foreign_keys = ON');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -' + cacheMiB * 1024);
  db.pragma('mmap_size = 0');
  parentPort.postMessage({ id: 0, value: true });
} catch (err) {
  openError = err;
  parentPort.postMessage({ id: 0, error: { message: String(err && err.message), code: err && err.code } });
}
function statement(sql) {
  let s = statements.get(sql);
  if (!s) {
    if (statements.size >= statementCache) statements.clear();
    s = db.prepare(sql);
    statements.set(sql, s);
  }
  return s;
}
function handle(m) {
  if (openError) throw openError;
  switch (m.op) {
    case 'all': {
      const s = statement(m.sql);
      if (m.readOnly && !s.readonly) return { writes: true };
      return { value: s.all(...m.params) };
    }
    case 'run':
      return { value: statement(m.sql).run(...m.params).changes };
    case 'begin':
      // No busy wait here: the main thread retries on a timer, so the wait has a deadline it owns.
      db.pragma('busy_timeout = 0');
      try {
        db.exec('BEGIN IMMEDIATE');
      } finally {
        db.pragma('busy_timeout = ' + busyTimeoutMs);
      }
      return { value: true };
    case 'commit':
      db.exec('COMMIT');
      return { value: true };
    case 'rollback':
      if (db.inTransaction) db.exec('ROLLBACK');
      return { value: true };
    case 'close':
      statements.clear();
      db.close();
      return { value: true };
  }
  throw new Error('unknown request ' + m.op);
}
parentPort.on('message', (m) => {
  let answer;
  try {
    answer = handle(m);
  } catch (err) {
    answer = { error: { message: String(err && err.message), code: err && err.code } };
  }
  answer.id = m.id;
  parentPort.postMessage(answer);
});
`;

const STATEMENT_CACHE = 500;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** An Error as the worker reported it: SQLite's message and code (SQLITE_BUSY, SQLITE_CONSTRAINT…). */
function workerError(e: { message: string; code?: unknown }): Error {
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code });
}

/** BLOB columns come back from the worker as Uint8Array; the store reads Buffers, as from better-sqlite3. */
function buffers<T>(rows: T[]): T[] {
  for (const row of rows as Record<string, unknown>[]) {
    for (const key in row) {
      const v = row[key];
      if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[key] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return rows;
}

/**
 * A connection in its own thread. Requests are answered in the order sent. The thread keeps the
 * process alive only while a request is outstanding, as an open better-sqlite3 handle never did.
 */
export class SqliteThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  /** Settles once the connection is open (or could not be). */
  readonly opened: Promise<void>;

  constructor(options: ThreadOptions) {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module, path: options.path, busyTimeoutMs: options.busyTimeoutMs, cacheMiB: options.cacheMiB, statementCache: STATEMENT_CACHE },
      // The thread's own output would interleave with serve's JSON log lines: it writes none.
      stdout: false,
      stderr: false,
    });
    let openedResolve: () => void = () => undefined;
    let openedReject: (err: Error) => void = () => undefined;
    this.opened = new Promise<void>((resolve, reject) => {
      openedResolve = resolve;
      openedReject = reject;
    });
    // Nobody may await `opened` (the first request reports the failure too).
    this.opened.catch(() => undefined);
    this.pending.set(0, { resolve: () => openedResolve(), reject: openedReject });
    this.worker.on('message', (m: { id: number; value?: unknown; writes?: true; error?: { message: string; code?: unknown } }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.error) p.reject(workerError(m.error));
      else p.resolve(m.writes ? WRITES : m.value);
    });
    const fail = (err: Error): void => {
      this.failure ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.worker.unref();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the SQLite connection thread ended (exit code ${code})`)));
  }

  private request(message: Request): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  /** Rows of a statement; with readOnly, WRITES instead when the statement would write. */
  async all<T>(sql: string, params: readonly Param[], readOnly = false): Promise<T[] | typeof WRITES> {
    const value = await this.request({ op: 'all', sql, params, readOnly });
    return value === WRITES ? WRITES : buffers(value as T[]);
  }

  async run(sql: string, params: readonly Param[]): Promise<number> {
    return (await this.request({ op: 'run', sql, params })) as number;
  }

  async control(op: 'begin' | 'commit' | 'rollback'): Promise<void> {
    await this.request({ op });
  }

  /** Closes the connection, then ends the thread. */
  async close(): Promise<void> {
    try {
      await this.request({ op: 'close' });
    } finally {
      this.failure ??= new Error('the SQLite connection is closed');
      await this.worker.terminate();
    }
  }
}
