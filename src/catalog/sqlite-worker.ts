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
import { type Request, type ThreadOptions, WRITES, toWire } from './sqlite-thread.js';
import { openLocalSqliteStore } from './sqlite.js';

/** The store methods each role runs whole (SqliteStore in sqlite.ts forwards them). */
const THREAD_METHODS = {
  writer: ['setTag', 'pushTag', 'deleteTag', 'deleteManifest', 'recordPusher', 'removeReferrer', 'putManifest', 'putManifests', 'reconcileRepository', 'markUnreadable'],
  reader: ['searchImages', 'listRepositories', 'getImage', 'getImages', 'lookupManifest'],
} as const;

type Role = keyof typeof THREAD_METHODS;

const options = workerData as ThreadOptions & { role: Role };
const port = parentPort;
if (!port) throw new Error('sqlite-worker runs as a worker thread');
const { store, driver, connection } = openLocalSqliteStore(options);
const methods: readonly string[] = THREAD_METHODS[options.role];

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
      const method = (store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[m.method] as (...args: unknown[]) => Promise<unknown>;
      return method.apply(store, m.args as unknown[]);
    }
    case 'close':
      await store.close();
      return true;
  }
}

port.on('message', (m: Request & { id: number }) => {
  handle(m).then(
    (value) => port.postMessage(value === WRITES ? { id: m.id, writes: true } : { id: m.id, value }),
    (err: unknown) => port.postMessage({ id: m.id, error: toWire(err) }),
  );
});
// Open: the connection was opened above (a failure there ends the thread, which fails every request).
port.postMessage({ id: 0, value: true });
