// SQLite's connection threads as callers see them. An in-memory catalog exists on one connection
// only: what the write thread's store methods write, the main thread's transactions and every
// read must find on that same connection. A thread that ends fails what waits on it; a catalog
// file's next call starts a new one.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import { StoreError } from '../../src/errors.js';
import { useTempDir } from '../helpers/fixtures.js';
import { manifestRecord } from './seed.js';
import { openStore } from '../../src/catalog/open.js';
import type { Store } from '../../src/catalog/store.js';
import type { ManifestRecord } from '../../src/catalog/types.js';

function image(n: number): ManifestRecord {
  return manifestRecord(`config-${n}`, { 'com.gitlab.ci.pipeline_id': String(n) });
}

describe('an in-memory SQLite catalog', () => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it('reads what its tag events, manifests and reconciliations wrote', async () => {
    store = await openStore('sqlite::memory:');
    const [a, b] = [image(1), image(2)];
    // Store methods the write thread runs whole, then one of the main thread's transactions.
    expect(await store.putManifest(a)).toEqual({ inserted: true });
    await store.setTag('mem/app', 'v1', a.digest, new Date(Date.UTC(2026, 0, 2)));
    await store.putManifests([b]);
    await store.reconcileRepository('mem/app', new Map([['v1', a.digest], ['v2', b.digest]]), new Date(Date.UTC(2026, 0, 3)));

    expect(await store.hasManifests([a.digest, b.digest])).toEqual(new Set([a.digest, b.digest]));
    expect((await store.getImage(a.digest))?.digest).toBe(a.digest);
    expect([...(await store.getImages([a.digest, b.digest])).keys()].sort()).toEqual([a.digest, b.digest].sort());
    const repositories = await store.listRepositories({});
    expect(repositories.items.map((r) => [r.name, r.tagCount, r.buildTagCount])).toEqual([['mem/app', 2, 2]]);
    const found = await store.searchImages({ repository: 'mem/app' });
    expect(found.items.map((t) => t.tag).sort()).toEqual(['v1', 'v2']);
    expect(await store.stats()).toMatchObject({ manifests: 2 });
  });
});

describe('a SQLite connection thread that ends', () => {
  const dir = useTempDir('sqlite-thread');
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  type Threads = { writer: { worker: Worker }; readConnection(): Promise<{ worker: Worker }> | undefined };

  it('fails the calls waiting on it; later calls run on a new thread, over what was committed and nothing else', async () => {
    const file = join(dir(), 'catalog.db');
    store = await openStore(`sqlite:${file}`);
    const driver = (store as SqlStore).driver;
    const committed = image(1);
    await store.putManifest(committed);
    await store.setTag('gone/app', 'v0', committed.digest, new Date());
    let release: () => void = () => undefined;
    let began: () => void = () => undefined;
    const inTransaction = new Promise<void>((resolve) => (began = resolve));
    // A transaction of the main thread holds the write connection ...
    const held = driver.write(async (q) => {
      await q.run('INSERT INTO sync_checkpoints (key, value, updated_at) VALUES (?, ?, ?)', ['k', 'v', 1]);
      began();
      await new Promise<void>((resolve) => (release = resolve));
      await q.run('INSERT INTO sync_checkpoints (key, value, updated_at) VALUES (?, ?, ?)', ['k2', 'v', 1]);
    });
    await inTransaction;
    // ... so this tag event waits in the write thread until the thread ends.
    const waiting = store.setTag('gone/app', 'v1', image(3).digest, new Date());
    await (driver as unknown as Threads).writer.worker.terminate();
    await expect(waiting).rejects.toThrow(/thread ended/);
    await expect(waiting).rejects.toBeInstanceOf(StoreError);
    // A new thread may take the connection's place meanwhile: the open transaction's next
    // statement still fails, and does not run without its transaction on the new one.
    const later = store.setTag('gone/app', 'v2', image(4).digest, new Date());
    release();
    await expect(held).rejects.toBeInstanceOf(StoreError);
    await expect(later).resolves.toBe('applied');
    // The reader too: a read after its thread ended starts another.
    const reader = await (driver as unknown as Threads).readConnection();
    expect(reader).toBeDefined();
    await reader!.worker.terminate();
    expect((await store.searchImages({ repository: 'gone/app' })).items.map((t) => t.tag).sort()).toEqual(['v0', 'v2']);

    await store.close();
    store = undefined;
    // Read back from the file: the committed tags, the later one, and nothing of the broken transaction or the failed event.
    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare("SELECT g.name FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name = 'gone/app' ORDER BY g.name").pluck().all()).toEqual(['v0', 'v2']);
      expect(db.prepare('SELECT count(*) FROM sync_checkpoints').pluck().get()).toBe(0);
    } finally {
      db.close();
    }
  });

  it('a new write thread that cannot open the file fails the reads of that moment, and no later read, written or not', async () => {
    const home = join(dir(), 'home');
    const away = join(dir(), 'away');
    mkdirSync(home);
    const file = join(home, 'catalog.db');
    store = await openStore(`sqlite:${file}`);
    const driver = (store as SqlStore).driver;
    const rec = image(7);
    await store.putManifest(rec);
    expect((await store.getImage(rec.digest))?.digest).toBe(rec.digest);
    // Both threads end ...
    await (driver as unknown as Threads).writer.worker.terminate();
    await (await (driver as unknown as Threads).readConnection())!.worker.terminate();
    // ... with the file out of reach: the thread that replaces the writer cannot open it, nor can the
    // reader that starts after it.
    renameSync(home, away);
    const write = store.setTag('reopen/app', 'v1', rec.digest, new Date());
    const read = store.getImage(rec.digest);
    await expect(write).rejects.toBeInstanceOf(StoreError);
    await expect(read).rejects.toBeInstanceOf(StoreError);
    // Back in place: reads go on, even before any write, and writes too, each on a new thread.
    renameSync(away, home);
    expect((await store.getImage(rec.digest))?.digest).toBe(rec.digest);
    await expect(store.setTag('reopen/app', 'v1', rec.digest, new Date())).resolves.toBe('applied');
    expect((await store.searchImages({ repository: 'reopen/app' })).items.map((t) => t.tag)).toEqual(['v1']);
  });

  it('closes without starting a thread in its place', async () => {
    const home = join(dir(), 'closing-home');
    mkdirSync(home);
    const closing = await openStore(`sqlite:${join(home, 'catalog.db')}`);
    await closing.putManifest(image(9));
    await ((closing as SqlStore).driver as unknown as Threads).writer.worker.terminate();
    // A thread started now could not open the file: closing must not need one.
    renameSync(home, join(dir(), 'closing-away'));
    await expect(closing.close()).resolves.toBeUndefined();
    await expect(closing.setTag('closed/app', 'v1', image(9).digest, new Date())).rejects.toThrow(/is closed/);
  });

  it('whose catalog file was removed meanwhile: the new thread fails with SQLite\'s code, and creates no empty catalog in its place', async () => {
    const file = join(dir(), 'removed.db');
    store = await openStore(`sqlite:${file}`);
    const driver = (store as SqlStore).driver;
    await store.putManifest(image(8));
    await (driver as unknown as Threads).writer.worker.terminate();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
    const write = store.setTag('removed/app', 'v1', image(8).digest, new Date());
    await expect(write).rejects.toBeInstanceOf(StoreError);
    await expect(write).rejects.toThrow(/SQLITE_CANTOPEN/);
    expect(existsSync(file)).toBe(false);
  });

  it('in memory, fails every later call too: a new thread would find an empty catalog', async () => {
    store = await openStore('sqlite::memory:');
    const driver = (store as SqlStore).driver;
    await store.putManifest(image(5));
    await (driver as unknown as Threads).writer.worker.terminate();
    await expect(store.setTag('gone/app', 'v2', image(5).digest, new Date())).rejects.toBeInstanceOf(StoreError);
    await expect(store.getImage(image(5).digest)).rejects.toBeInstanceOf(StoreError);
    // Closing still ends what is left, and settles.
    const closing = store.close();
    store = undefined;
    await expect(closing).resolves.toBeUndefined();
  });
});

describe('a closed SQLite catalog', () => {
  const dir = useTempDir('sqlite-closed');

  it('refuses reads, and starts no connection thread for them', async () => {
    const closed = await openStore(`sqlite:${join(dir(), 'catalog.db')}`);
    const rec = image(5);
    await closed.putManifest(rec);
    await closed.close();
    await expect(closed.getImage(rec.digest)).rejects.toBeInstanceOf(StoreError);
    await expect(closed.searchImages({})).rejects.toBeInstanceOf(StoreError);
    await expect(closed.hasManifest(rec.digest)).rejects.toBeInstanceOf(StoreError);
  });
});

describe('writes of the main thread and of the write thread (sqlite)', () => {
  const dir = useTempDir('sqlite-interleave');

  it("a store method sent while a main-thread transaction is open runs after it: that transaction's rollback leaves it written", async () => {
    const path = join(dir(), 'catalog.db');
    const store = await openStore(`sqlite:${path}`);
    try {
      const driver = (store as SqlStore).driver;
      const rec = image(6);
      let tagSent: Promise<unknown> = Promise.resolve();
      const refused = new Error('refused on purpose');
      const rolledBack = driver.write(async (q) => {
        await q.run('INSERT INTO sync_checkpoints (key, value, updated_at) VALUES (?, ?, ?)', ['rolled-back', 'v', 1]);
        // Another caller's tag event (run whole on the write thread) arrives mid-transaction.
        tagSent = store.setTag('mixed/app', 'v1', rec.digest, new Date(Date.UTC(2026, 0, 2)));
        await new Promise((resolve) => setTimeout(resolve, 50));
        await q.run('INSERT INTO sync_checkpoints (key, value, updated_at) VALUES (?, ?, ?)', ['rolled-back-2', 'v', 1]);
        throw refused;
      });
      await expect(rolledBack).rejects.toThrow(/refused on purpose/);
      await tagSent;
      const db = new Database(path, { readonly: true });
      try {
        expect(db.prepare('SELECT key FROM sync_checkpoints').all()).toEqual([]);
        expect(db.prepare('SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = ?').all('mixed/app')).toEqual([{ name: 'v1' }]);
      } finally {
        db.close();
      }
    } finally {
      await store.close();
    }
  });
});
