// When SQLite copies the WAL back into the catalog file: once the WAL holds WAL_CHECKPOINT_PAGES
// pages, not at SQLite's default of 1,000 (when every 40th tag push also paid for a checkpoint
// and its fsyncs on the write thread). Read from the files: the WAL's frames since its last
// restart (the current salts), and the catalog file's size, which grows only when a checkpoint
// copies pages into it.
import { readFileSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/catalog/open.js';
import { WAL_CHECKPOINT_PAGES, walBytes } from '../../src/catalog/sqlite.js';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { useTempDir } from '../helpers/fixtures.js';

function image(n: number): ManifestRecord {
  const annotations = { 'com.gitlab.ci.pipeline_id': String(1000 + n), 'org.opencontainers.image.revision': `${n}`.padStart(40, 'c'), 'com.gitlab.ci.ref': `branch-${n}` };
  const config = sha256Digest(Buffer.from(`config-${n}`));
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config, size: 2 }, layers: [], annotations }));
  return { digest: sha256Digest(raw), mediaType: OCI_MANIFEST, raw, configDigest: config, annotations };
}

/** The WAL's frames since its last restart: those that carry its header's salts. */
function walFrames(dbPath: string): number {
  const wal = readFileSync(`${dbPath}-wal`);
  if (wal.length < 32) return 0;
  const pageSize = wal.readUInt32BE(8);
  const salt = wal.subarray(16, 24);
  let frames = 0;
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    if (!wal.subarray(at + 8, at + 16).equals(salt)) break;
    frames++;
  }
  return frames;
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
