// When SQLite copies the WAL back into the catalog file: once the WAL holds WAL_CHECKPOINT_PAGES
// pages, not at SQLite's default of 1,000 (when every 40th tag push also paid for a checkpoint
// and its fsyncs on the write thread). Read from the files: the WAL's frames since its last
// restart (the current salts), and the catalog file's size, which grows only when a checkpoint
// copies pages into it.
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/catalog/open.js';
import { WAL_CHECKPOINT_PAGES, walBytes } from '../../src/catalog/sqlite.js';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { useTempDir } from '../helpers/fixtures.js';
import { manifestRecord } from './seed.js';
import { walSinceRestart } from './wal-file.js';

function image(n: number): ManifestRecord {
  return manifestRecord(`config-${n}`, { 'com.gitlab.ci.pipeline_id': String(1000 + n), 'org.opencontainers.image.revision': `${n}`.padStart(40, 'c'), 'com.gitlab.ci.ref': `branch-${n}` });
}

/** The WAL's frames since its last restart. */
function walFrames(dbPath: string): number {
  return walSinceRestart(dbPath).frames;
}

describe('SQLite checkpoints', () => {
  const dir = useTempDir('sqlite-checkpoint');

  it(`copies the WAL into the catalog once it holds ${WAL_CHECKPOINT_PAGES} pages, not at 1,000`, async () => {
    const path = join(dir(), 'catalog.db');
    const store = await openStore(`sqlite:${path}`);
    let n = 0;
    try {
        const push = async (): Promise<void> => {
        const m = image(n++);
        await store.pushTag({ repository: `group/app${n % 7}`, tag: `v${n}`, digest: m.digest, at: new Date(Date.UTC(2026, 0, 1) + n * 60_000), manifest: m });
      };
      await push();
      const size = statSync(path).size;
      // Past SQLite's default threshold, with room below ours: nothing was copied back yet.
      while (walFrames(path) < 3 * 1000 && n < 2000) await push();
      expect(walFrames(path)).toBeGreaterThanOrEqual(3000);
      expect(statSync(path).size).toBe(size);

      // On to ours: a checkpoint copies the pages back and the WAL starts over.
      let most = 0;
      let walSize = 0;
      for (let frames = walFrames(path); frames >= most && n < 5000; frames = walFrames(path)) {
        most = frames;
        walSize = statSync(`${path}-wal`).size;
        await push();
      }
      expect(walFrames(path)).toBeLessThan(most);
      expect(most).toBeGreaterThanOrEqual(WAL_CHECKPOINT_PAGES);
      expect(statSync(path).size).toBeGreaterThan(size);
      // The WAL starts over in the file it filled: not cut (journal_size_limit) only to grow again.
      expect(walSize).toBeGreaterThanOrEqual(walBytes(WAL_CHECKPOINT_PAGES, 4096));
      expect(statSync(`${path}-wal`).size).toBe(walSize);
    } finally {
      await store.close();
    }
    // And the catalog holds every push.
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM tags WHERE deleted_at IS NULL').get()).toEqual({ n: n });
    } finally {
      db.close();
    }
  });
});
