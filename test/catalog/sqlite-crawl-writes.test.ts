// A crawl's writes into SQLite go to the write connection's thread as whole store methods: a
// batch of manifests, a repository's reconciliation, a manifest marked unreadable are one message
// each, not one per statement of their transaction (a round trip between threads each). Counted
// at the thread's port, read back with SQL.
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/catalog/open.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import type { Store } from '../../src/catalog/store.js';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { useTempDir } from '../helpers/fixtures.js';
import { manifestRecord } from './seed.js';

function image(n: number): ManifestRecord {
  return manifestRecord(`crawl-config-${n}`, { 'com.gitlab.ci.pipeline_id': String(n), 'com.gitlab.ci.project_path': 'group/app' });
}

/** Counts the messages the main thread sends to the write connection's thread. */
function countWriterMessages(store: Store): { count: () => number } {
  const worker = ((store as SqlStore).driver as unknown as { writer: { worker: Worker } }).writer.worker;
  let sent = 0;
  const post = worker.postMessage.bind(worker);
  worker.postMessage = (...args: Parameters<Worker['postMessage']>) => {
    sent++;
    post(...args);
  };
  return { count: () => sent };
}

describe("a crawl's writes into a SQLite catalog", () => {
  const dir = useTempDir('sqlite-crawl-writes');
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it('are one message to the write thread per batch, per reconciliation and per unreadable manifest', async () => {
    const path = join(dir(), 'catalog.db');
    store = await openStore(`sqlite:${path}`);
    const writer = countWriterMessages(store);
    const records = [1, 2, 3, 4, 5].map(image);

    expect(await store.putManifests(records)).toEqual(records.map(() => ({ inserted: true })));
    expect(writer.count()).toBe(1);
    const at = new Date(Date.UTC(2026, 1, 3));
    const live = new Map(records.map((r, i) => [`v${i}`, r.digest]));
    expect(await store.reconcileRepository('group/app', live, at)).toMatchObject({ added: 5 });
    expect(writer.count()).toBe(2);
    const unreadable = sha256Digest(Buffer.from('unreadable'));
    await store.markUnreadable(unreadable, 'UNREADABLE_MANIFEST', 'nests too deep', at);
    expect(writer.count()).toBe(3);

    const db = new Database(path, { readonly: true });
    try {
      const manifests = db.prepare('SELECT digest FROM manifests ORDER BY digest').all() as { digest: string }[];
      expect(manifests.map((m) => m.digest)).toEqual(records.map((r) => r.digest).sort());
      const tags = db.prepare("SELECT t.name, t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'group/app' AND t.deleted_at IS NULL ORDER BY t.name").all();
      expect(tags).toEqual([...live].map(([name, digest]) => ({ name, digest })));
      expect(db.prepare('SELECT digest, code FROM unreadable_manifests').all()).toEqual([{ digest: unreadable, code: 'UNREADABLE_MANIFEST' }]);
    } finally {
      db.close();
    }
  });
});
