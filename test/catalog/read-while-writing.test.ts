// Reads go on while a write transaction is open, on both backends: serve keeps answering the API
// while events are written. SQLite reads on a connection of their own (WAL), so they neither wait
// behind the write nor see what it has not committed; PostgreSQL writes leave pooled connections
// for reads however many are waiting. Each write here is held open until the reads are done (or,
// should they wait behind it, until a long safety delay), and the test checks in which order
// things happened, read back through the store and with SQL.
import { afterEach, describe, expect, it } from 'vitest';
import type { Queryable } from '../../src/catalog/sql/driver.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import { useBackend } from './backends.js';

/** Long enough for any read to finish on a loaded machine; only a read stuck behind the write takes it. */
const SAFETY_MS = 20_000;

interface HeldWrite {
  /** Resolves once the transaction has run its statements and waits to commit. */
  entered: Promise<void>;
  /** Commits it. */
  release: () => void;
  /** Settles when the transaction has committed. */
  done: Promise<unknown>;
}

function holdWrite(store: SqlStore, statements: (q: Queryable) => Promise<void>): HeldWrite {
  let release: () => void = () => undefined;
  let entered: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const enteredP = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const safety = setTimeout(release, SAFETY_MS);
  const done = store.driver
    .write(async (q) => {
      await statements(q);
      entered();
      await held;
    })
    .finally(() => clearTimeout(safety));
  return { entered: enteredP, release, done };
}

describe('reads during a write transaction: sqlite', () => {
  const backend = useBackend('sqlite');
  let releases: (() => void)[] = [];
  afterEach(() => {
    for (const r of releases) r();
    releases = [];
  });

  it('answers reads while a write is open, from what was committed, and sees the write once committed', async () => {
    const catalog = await backend().fresh();
    const store = catalog.store as SqlStore;
    await store.setCheckpoint('before', { n: 1 });
    const write = holdWrite(store, async (q) => {
      await q.run('INSERT INTO sync_checkpoints (key, value, updated_at) VALUES (?, ?, ?)', ['during', JSON.stringify({ n: 2 }), Date.now()]);
    });
    releases.push(write.release);
    await write.entered;

    let committed = false;
    void write.done.then(() => {
      committed = true;
    });
    const before = await store.getCheckpoint('before');
    const during = await store.getCheckpoint('during');
    const repositories = await store.listRepositories({});
    const readsDoneWhileOpen = !committed;
    write.release();
    await write.done;

    expect(readsDoneWhileOpen).toBe(true);
    expect(before).toEqual({ n: 1 });
    // Not committed yet when read: not seen.
    expect(during).toBeUndefined();
    expect(repositories.items).toEqual([]);
    expect(await store.getCheckpoint('during')).toEqual({ n: 2 });
    expect(await catalog.sql("SELECT value FROM sync_checkpoints WHERE key = 'during'")).toEqual([{ value: JSON.stringify({ n: 2 }) }]);
  });
});

describe('reads while more writes wait than the pool has connections: postgres', () => {
  const backend = useBackend('postgres');
  let releases: (() => void)[] = [];
  afterEach(() => {
    for (const r of releases) r();
    releases = [];
  });

  it('answers a read while 12 write transactions are open or waiting', async () => {
    const catalog = await backend().fresh();
    const store = catalog.store as SqlStore;
    await store.setCheckpoint('before', { n: 1 });
    const writes = Array.from({ length: 12 }, (_, i) =>
      holdWrite(store, async (q) => {
        await q.run('INSERT INTO sync_checkpoints (key, value, updated_at) VALUES (?, ?, ?)', [`w${i}`, '{}', Date.now()]);
      }),
    );
    releases.push(...writes.map((w) => w.release));
    // The first write is open (the others wait for it, or for a connection).
    await writes[0]?.entered;

    let anyCommitted = false;
    for (const w of writes) {
      void w.done.then(() => {
        anyCommitted = true;
      });
    }
    const before = await store.getCheckpoint('before');
    const readDoneWhileOpen = !anyCommitted;
    for (const w of writes) w.release();
    // Each waiting write runs once the one before it commits; release them all as they come.
    await Promise.all(writes.map((w) => w.done));

    expect(readDoneWhileOpen).toBe(true);
    expect(before).toEqual({ n: 1 });
    expect(await catalog.sql("SELECT count(*)::int AS n FROM sync_checkpoints WHERE key LIKE 'w%'")).toEqual([{ n: 12 }]);
  });
});
