// The write connection's thread (started by SqliteThread.writer): it owns the one connection
// this process writes through, and runs
//   - statements the main thread sends, one message each (a main-thread transaction holds the
//     connection from `begin` to `commit` or `rollback`), and
//   - whole store methods (`call`) of the event path: a tag push is one message, not the twenty
//     statements of its transaction, so the main thread neither runs them nor waits on each.
// Both go through one queue (the local driver's), so transactions never interleave.
import { parentPort, workerData } from 'node:worker_threads';
import { UsageError } from '../errors.js';
import type { Queryable } from './sql/driver.js';
import { type Request, type ThreadOptions, toWire } from './sqlite-thread.js';
import { openLocalSqliteStore } from './sqlite.js';

/** The store methods the main thread may run here (SqliteStore in sqlite.ts forwards them). */
export const WRITER_METHODS = ['setTag', 'deleteTag', 'deleteManifest', 'recordPusher', 'removeReferrer', 'putManifest'] as const;
type WriterMethod = (typeof WRITER_METHODS)[number];

const options = workerData as ThreadOptions;
const port = parentPort;
if (!port) throw new Error('sqlite-writer runs as a worker thread');
const { store, driver } = openLocalSqliteStore(options);

/** A transaction of the main thread, open in the driver's queue until `commit` or `rollback`. */
let held: { q: Queryable; finish: (commit: boolean) => void; done: Promise<unknown> } | undefined;
const ROLLED_BACK = new Error('rolled back by the main thread');

async function handle(m: Request): Promise<unknown> {
  switch (m.op) {
    case 'all':
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
      if (!(WRITER_METHODS as readonly string[]).includes(m.method)) throw new UsageError(`${m.method} is not a method of the write thread`);
      const method = store[m.method as WriterMethod] as (...args: unknown[]) => Promise<unknown>;
      return method.apply(store, m.args as unknown[]);
    }
    case 'close':
      await store.close();
      return true;
  }
}

port.on('message', (m: Request & { id: number }) => {
  handle(m).then(
    (value) => port.postMessage({ id: m.id, value }),
    (err: unknown) => port.postMessage({ id: m.id, error: toWire(err) }),
  );
});
// Open: the connection was opened above (a failure there ends the thread, which fails every request).
port.postMessage({ id: 0, value: true });
