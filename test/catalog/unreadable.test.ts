// A manifest tagtrail cannot read (here one the registry stores but that nests deeper than
// tagtrail parses) is fetched once: later syncs name it among the errors without asking the
// registry for it again. Counted at the registry, read back with SQL.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useRegistry, useTempDir } from '../helpers/fixtures.js';
import { makeImage, pushImage, sha256 } from '../helpers/images.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function nested(levels: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

describe('a manifest tagtrail cannot read', () => {
  const registry = useRegistry();
  const dir = useTempDir('unreadable');

  it('is read once, recorded, and not fetched again by the next sync', async () => {
    const image = await makeImage(join(dir(), 'img'), { tag: 'v1' });
    await pushImage(image, `${registry().host}/odd/app:v1`);
    const bytes = Buffer.from(JSON.stringify({ ...image.manifest, 'com.example.extra': nested(100) }));
    const digest = sha256(bytes);
    const put = await fetch(`${registry().url}/v2/odd/app/manifests/deep`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: bytes });
    expect(put.status).toBe(201);

    const path = join(dir(), 'catalog.db');
    const sync = () => runCli(['sync', '--registry', registry().host, '--repository', 'odd', '--db', `sqlite:${path}`, '-o', 'json']);
    const gets = () => registry().count((r) => r.method === 'GET' && r.path === `/v2/odd/app/manifests/${digest}`);

    registry().resetRequests();
    const first = await sync();
    expect(first.code, first.stderr).toBe(1);
    expect(gets()).toBe(1);
    const db = new Database(path, { readonly: true });
    try {
      const row = db.prepare('SELECT code, reason, tagtrail_version FROM unreadable_manifests WHERE digest = ?').get(digest) as { code: string; reason: string; tagtrail_version: string } | undefined;
      expect(row?.code).toBe('UNREADABLE_MANIFEST');
      expect(row?.reason).toContain('64 levels');
      // The tag stays live, without details; the readable image is catalogued as usual.
      const tags = db.prepare("SELECT g.name FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name = 'odd/app' AND g.deleted_at IS NULL ORDER BY g.name").all() as { name: string }[];
      expect(tags.map((t) => t.name)).toEqual(['deep', 'v1']);
    } finally {
      db.close();
    }

    registry().resetRequests();
    const second = await sync();
    expect(second.code).toBe(1);
    expect(gets()).toBe(0);
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(0);
    expect(second.stdout + second.stderr).toContain('not fetched again');
  });
});
