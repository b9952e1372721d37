// A SQLite connection's thread (started by SqliteThread): it owns one connection, so no statement
// runs on the main thread, which serves HTTP. Its role:
//   writer: the one connection this process writes through. It runs statements the main thread
//     sends, one message each (a main-thread transaction holds the connection from `begin` to
//     `commit` or `rollback`), and whole store methods of the event path and of a crawl (`call`):
//     a tag push, or a crawl's batch of manifests, is one message, not the twenty statements of
//     its transaction. Both go through the local driver's queue, so transactions never interleave.
//   reader: reads outside a transaction (WAL: a committed snapshot per statement): statements
//     (one that would write is answered `writes`, for the main thread to send to the writer), and
//     whole search methods, so a query waits once for the main thread's loop, not per statement.
import { parentPort, workerData } from 'node:worker_threads';
import { UsageError } from '../errors.js';
import type { Queryable } from './sql/driver.js';
import { type Answer, GROUPED_WRITES, type Request, THREAD_METHODS, type ThreadOptions, WRITES, inOneMessage, toWire } from './sqlite-thread.js';
import { type GroupedCall, openLocalSqliteStore } from './sqlite.js';

type Role = keyof typeof THREAD_METHODS;

const options = workerData as ThreadOptions & { role: Role };
const port = parentPort;
if (!port) throw new Error('sqlite-worker runs as a worker thread');
const { store, driver, connection, writeGroup } = openLocalSqliteStore(options);
const methods: readonly string[] = THREAD_METHODS[options.role];

/** At most this many calls in one group: the first of them waits for the last's statements before its COMMIT. */
const MAX_GROUP = 32;

interface Waiting {
  call: GroupedCall;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Grouped calls not yet in a group, and whether a group that will take them is queued. */
let waiting: Waiting[] = [];
let groupQueued = false;

/**
 * Queues a group once the messages of this turn of the loop are in (setImmediate); the group takes
 * its calls when the write connection is free, so those that arrive meanwhile join it.
 */
function joinGroup(call: GroupedCall): Promise<unknown> {
  return new Promise((resolve, reject) => {
    waiting.push({ call, resolve, reject });
    if (groupQueued) return;
    groupQueued = true;
    setImmediate(runGroup);
  });
}

function runGroup(): void {
  let taken: Waiting[] | undefined;
  writeGroup(() => {
    taken = waiting.slice(0, MAX_GROUP);
    waiting = waiting.slice(taken.length);
    groupQueued = waiting.length > 0;
    if (groupQueued) setImmediate(runGroup);
    return taken.map((w) => w.call);
  }).then(
    (outcomes) =>
      outcomes.forEach((o, i) => {
        const w = (taken as Waiting[])[i] as Waiting;
        if (o.status === 'fulfilled') w.resolve(o.value);
        else w.reject(o.reason);
      }),
    (err: unknown) => {
      // Refused before it took its calls (the catalog closed): those waiting fail with it.
      if (!taken) {
        taken = waiting;
        waiting = [];
        groupQueued = false;
      }
      for (const w of taken) w.reject(err);
    },
  );
}

/** A transaction of the main thread, open in the driver's queue until `commit` or `rollback`. */
let held: { q: Queryable; finish: (commit: boolean) => void; done: Promise<unknown> } | undefined;
const ROLLED_BACK = new Error('rolled back by the main thread');

async function handle(m: Request): Promise<unknown> {
  if (options.role === 'reader' && m.op !== 'all' && m.op !== 'call' && m.op !== 'close') throw new UsageError(`${m.op}: the read connection does not write`);
  switch (m.op) {
    case 'all':
      if (options.role === 'reader') return connection.all(m.sql, m.params, m.readOnly);
      return held ? held.q.all(m.sql, m.params) : driver.all(m.sql, m.params);
    case 'run':
      return held ? held.q.run(m.sql, m.params) : driver.run(m.sql, m.params);
    case 'begin':
      await new Promise<void>((ready, failed) => {
        const done: Promise<unknown> = driver.write(
          (q) =>
            new Promise((resolve, reject) => {
              held = { q, finish: (commit) => (commit ? resolve(true) : reject(ROLLED_BACK)), done };
              ready();
            }),
        );
        done.catch(failed);
      });
      return true;
    case 'commit': {
      const h = held;
      held = undefined;
      h?.finish(true);
      await h?.done;
      return true;
    }
    case 'rollback': {
      const h = held;
      held = undefined;
      h?.finish(false);
      await h?.done.catch(() => undefined);
      return true;
    }
    case 'call': {
      if (!methods.includes(m.method)) throw new UsageError(`${m.method} is not a method of the ${options.role} thread`);
      if (options.role === 'writer' && GROUPED_WRITES.has(m.method)) {
        const { method, args } = m;
        return joinGroup((grouped) => (grouped as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method]?.apply(grouped, args as unknown[]) as Promise<unknown>);
      }
      const method = (store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[m.method] as (...args: unknown[]) => Promise<unknown>;
      return method.apply(store, m.args as unknown[]);
    }
    case 'close':
      await store.close();
      return true;
  }
}

/** Answers settled in one turn of microtasks go as one message. */
const answer = inOneMessage<Answer>((message) => port.postMessage(message));

port.on('message', (message: (Request & { id: number }) | (Request & { id: number })[]) => {
  for (const m of Array.isArray(message) ? message : [message]) {
    handle(m).then(
      (value) => answer(value === WRITES ? { id: m.id, writes: true } : { id: m.id, value }),
      (err: unknown) => answer({ id: m.id, error: toWire(err) }),
    );
  }
});
// Open: the connection was opened above (a failure there ends the thread, which fails every request).
port.postMessage({ id: 0, value: true });
