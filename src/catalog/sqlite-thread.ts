// One SQLite connection owned by a worker thread: better-sqlite3 is synchronous, so a statement run
// on the main thread holds the event loop (and every HTTP request of serve) while SQLite works.
// Here the main thread sends a statement as a message and awaits the answer; SQLite's CPU time,
// page reads and commits happen on the worker's thread.
//
// The thread's code is sqlite-worker.ts (its own entry of the bundle in dist/); a small script
// passed as text (eval) loads it, through tsx when running from the TypeScript sources.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConflictError, DigestMismatchError, InvalidCursorError, InvalidInputError, NotFoundError, StoreError, UnreadableManifestError, UsageError, isTagtrailError } from '../errors.js';
import type { Param } from './sql/driver.js';
import type { SqlStore } from './sql/store.js';

/**
 * The store methods each thread runs whole, one message per call: the writes of the event path and
 * of a crawl on the write thread, search and the pages' reads on the read thread. SqliteStore
 * (sqlite.ts) forwards exactly these; sqlite-worker.ts answers exactly these.
 */
export const THREAD_METHODS = {
  writer: ['setTag', 'pushTag', 'pushTags', 'deleteTag', 'deleteManifest', 'recordPusher', 'removeReferrer', 'putManifest', 'markUnreadable', 'putManifests', 'reconcileRepository'],
  reader: ['searchImages', 'listRepositories', 'getImage', 'getImages', 'lookupManifest'],
} as const satisfies Record<'writer' | 'reader', readonly (keyof SqlStore)[]>;

/**
 * The write thread's methods that commit as one group when they wait for the connection
 * together (sqlite-worker.ts): the event path's, one tag or manifest each. A crawl's batches
 * (putManifests, reconcileRepository) are large already and commit on their own.
 */
export const GROUPED_WRITES: ReadonlySet<string> = new Set(THREAD_METHODS.writer.filter((m) => m !== 'putManifests' && m !== 'reconcileRepository'));

/**
 * Items handed over in one turn of the event loop's microtasks go to `post` as one message (a
 * lone item as itself): each message wakes the thread it goes to, and on a busy machine that costs
 * more than the clone of what it carries. Both sides of a connection thread send this way.
 */
export function inOneMessage<T>(post: (message: T | T[]) => void): (item: T) => void {
  let pending: T[] = [];
  return (item) => {
    if (pending.length === 0) {
      queueMicrotask(() => {
        const batch = pending;
        pending = [];
        post(batch.length === 1 ? (batch[0] as T) : batch);
      });
    }
    pending.push(item);
  };
}

export interface ThreadOptions {
  path: string;
  /** better-sqlite3's busy timeout, ms. */
  busyTimeoutMs: number;
  cacheMiB: number;
  /**
   * Open only a catalog file that exists. Set for connection threads: the main thread created the
   * file (private, migrated) before them, and a thread that replaces an ended one must not make an
   * empty catalog where the file was removed.
   */
  fileMustExist?: boolean;
}

/**
 * What the main thread asks; the worker answers { id, value }, { id, writes: true } or
 * { id, error }. `call` (the write thread only) runs a whole store method there.
 */
export type Request =
  | { op: 'all'; sql: string; params: readonly Param[]; readOnly: boolean }
  | { op: 'run'; sql: string; params: readonly Param[] }
  | { op: 'begin' | 'commit' | 'rollback' | 'close' }
  | { op: 'call'; method: string; args: readonly unknown[] };

/** The worker's answer to one request (it may post several in one message). */
export interface Answer {
  id: number;
  value?: unknown;
  writes?: true;
  error?: WireError;
}

/** An error as it crosses between threads: its message, SQLite's or tagtrail's code, the hint. */
interface WireError {
  message: string;
  code?: unknown;
  hint?: string;
  tagtrail?: boolean;
}

export function toWire(err: unknown): WireError {
  if (isTagtrailError(err)) return { message: err.message, code: err instanceof InvalidCursorError ? 'CURSOR' : err.code, ...(err.hint !== undefined ? { hint: err.hint } : {}), tagtrail: true };
  const e = err as { message?: unknown; code?: unknown } | null;
  return { message: String(e?.message ?? err), ...(e?.code !== undefined ? { code: e.code } : {}) };
}

/** The store's errors with a plain constructor, by code; any other code arrives as a StoreError. */
const BY_CODE: Record<string, new (message: string, options: { hint?: string }) => Error> = {
  /** InvalidCursorError shares UsageError's code; only on the wire it has its own. */
  CURSOR: InvalidCursorError,
  USAGE: UsageError,
  DIGEST_MISMATCH: DigestMismatchError,
  UNREADABLE_MANIFEST: UnreadableManifestError,
  NOT_FOUND: NotFoundError,
  CONFLICT: ConflictError,
  STORE: StoreError,
};
const INPUT_CODES = new Set(['INVALID_REFERENCE', 'INVALID_ANNOTATION', 'INVALID_MANIFEST', 'INVALID_CURSOR', 'UNSUPPORTED']);

/** The error again on this side: the store's own errors keep their class and code, SQLite's their code. */
function fromWire(e: WireError): Error {
  if (e.tagtrail) {
    const options = e.hint !== undefined ? { hint: e.hint } : {};
    if (typeof e.code === 'string' && INPUT_CODES.has(e.code)) return new InvalidInputError(e.code as ConstructorParameters<typeof InvalidInputError>[0], e.message, options);
    const Class = BY_CODE[String(e.code)] ?? StoreError;
    return new Class(e.message, options);
  }
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code });
}

/** Marks the answer to an `all` with readOnly set whose statement writes: run it on the write connection. */
export const WRITES = Symbol('writes');

/** tsx's ESM API (its `import` export; the CommonJS one cannot register hooks from a worker). */
function tsxEsmApi(): string {
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const { exports } = JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(join(dirname(manifest), (exports['./esm/api'] as { import: { default: string } }).import.default)).href;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** A store method's answer with every Uint8Array in it (a manifest's bytes) a Buffer again, as the store returns them. */
function asBuffers(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = asBuffers(v[i]);
  } else if (v instanceof Map) {
    for (const [k, x] of v) v.set(k, asBuffers(x));
  } else if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    const o = v as Record<string, unknown>;
    for (const k in o) o[k] = asBuffers(o[k]);
  }
  return v;
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
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  /** Settles once the connection is open (or could not be). */
  readonly opened: Promise<void>;

  private constructor(private readonly worker: Worker) {
    let openedResolve: () => void = () => undefined;
    let openedReject: (err: Error) => void = () => undefined;
    this.opened = new Promise<void>((resolve, reject) => {
      openedResolve = resolve;
      openedReject = reject;
    });
    // Nobody may await `opened` (the first request reports the failure too).
    this.opened.catch(() => undefined);
    this.pending.set(0, { resolve: () => openedResolve(), reject: openedReject });
    this.worker.on('message', (message: Answer | Answer[]) => {
      for (const m of Array.isArray(message) ? message : [message]) {
        const p = this.pending.get(m.id);
        if (!p) continue;
        this.pending.delete(m.id);
        if (m.error) p.reject(fromWire(m.error));
        else p.resolve(m.writes ? WRITES : m.value);
      }
      if (this.pending.size === 0) this.worker.unref();
    });
    const fail = (err: Error): void => {
      this.failure ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.worker.unref();
    };
    // The store's own error class, whatever ended the thread: callers tell a catalog failure by it.
    this.worker.on('error', (err: unknown) => {
      // An error of a class of its own (better-sqlite3's SqliteError) crosses from the thread with its code only.
      const e = err as { message?: unknown; code?: unknown } | null;
      const what = typeof e?.message === 'string' ? e.message : typeof e?.code === 'string' ? e.code : String(err);
      fail(new StoreError(`the SQLite connection thread failed: ${what}`, { cause: err }));
    });
    this.worker.on('exit', (code) => fail(new StoreError(`the SQLite connection thread ended (exit code ${code})`)));
  }

  /**
   * A connection's thread (sqlite-worker.ts) in its role. From the TypeScript sources (tests), the
   * thread loads them through tsx, as the main thread does.
   */
  static start(role: 'writer' | 'reader', options: ThreadOptions): SqliteThread {
    const fromSources = import.meta.url.endsWith('.ts');
    const entry = new URL(fromSources ? './sqlite-worker.ts' : './sqlite-worker.js', import.meta.url).href;
    const tsx = fromSources ? tsxEsmApi() : null;
    const bootstrap = `(async () => { if (${JSON.stringify(tsx)}) (await import(${JSON.stringify(tsx)})).register(); await import(${JSON.stringify(entry)}); })();`;
    return new SqliteThread(new Worker(bootstrap, { eval: true, workerData: { ...options, role } }));
  }

  private request(message: Request): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.send({ ...message, id });
    });
  }

  /** Requests made in one turn of microtasks go as one message; none once the thread has failed. */
  private readonly send = inOneMessage<Request & { id: number }>((message) => {
    if (!this.failure) this.worker.postMessage(message);
  });

  /** True once the thread has ended, failed or been closed: every request to it fails. */
  get ended(): boolean {
    return this.failure !== undefined;
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

  /** A store method run whole on the thread (sqlite-worker.ts): one message, not one per statement. */
  async call(method: string, args: readonly unknown[]): Promise<unknown> {
    return asBuffers(await this.request({ op: 'call', method, args }));
  }

  /** Closes the connection, then ends the thread. */
  async close(): Promise<void> {
    // A thread that already ended (crashed, or closed before) has nothing left to close.
    if (this.failure) {
      await this.worker.terminate();
      return;
    }
    try {
      await this.request({ op: 'close' });
    } finally {
      this.failure ??= new StoreError('the SQLite connection is closed');
      await this.worker.terminate();
    }
  }
}

