// The referrers tag's sha256-<hex> tags (tagtrail attach writes them on registries without
// the referrers API) are lists of referrers, not images: sync and the webhook leave them out of
// the catalog's tags (their referrers are followed: referrers-follow.e2e.test.ts). Read back with SQL.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../src/catalog/events.js';
import { openStore } from '../../src/catalog/open.js';
import { gitlabEnv, runCli } from '../helpers/cli.js';
import { curlManifest, makeImage, pushImage } from '../helpers/images.js';
import { useRegistry, useTempDir } from '../helpers/fixtures.js';

function liveTags(path: string, repository: string): { name: string; deleted: boolean }[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return (
      db
        .prepare('SELECT t.name AS name, t.deleted_at AS deleted_at FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = ? ORDER BY t.name')
        .all(repository) as { name: string; deleted_at: number | null }[]
    ).map((r) => ({ name: r.name, deleted: r.deleted_at !== null }));
  } finally {
    db.close();
  }
}

describe('referrers tags in the catalog', () => {
  const registry = useRegistry();
  const dir = useTempDir('referrers-tags');

  it('sync leaves the sha256-<hex> tag out, and retires one catalogued before', async () => {
    const image = await makeImage(join(dir(), 'img'), { tag: 'v1', seed: 'reftags', layers: 1 });
    const digest = await pushImage(image, `${registry().host}/team/app:v1`);
    const attached = await runCli(['attach', `${registry().host}/team/app:v1`], { env: gitlabEnv() });
    expect(attached.code).toBe(0);
    const fallback = `sha256-${digest.slice(7)}`;
    const listed = await curlManifest(`${registry().url}/v2/team/app/tags/list`);
    expect((JSON.parse(listed.body.toString('utf8')) as { tags: string[] }).tags.sort()).toEqual([fallback, 'v1']);

    const path = join(dir(), 'catalog.db');
    // A catalog that took the referrers tag for an image tag before: the sync retires it.
    const store = await openStore(`sqlite:${path}`);
    try {
      await store.setTag('team/app', fallback, digest, new Date(Date.now() - 60_000));
    } finally {
      await store.close();
    }
    expect(liveTags(path, 'team/app')).toEqual([{ name: fallback, deleted: false }]);

    const r = await runCli(['sync', '--registry', registry().host, '--repository', 'team', '--db', `sqlite:${path}`, '-o', 'json']);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as { tags: number; added: number; deleted: number };
    expect(summary).toMatchObject({ tags: 1, added: 1, deleted: 1 });
    expect(liveTags(path, 'team/app')).toEqual([
      { name: fallback, deleted: true },
      { name: 'v1', deleted: false },
    ]);
  });

  it('the webhook follows pushes and deletes of a referrers tag as such, not as image tags; cosign-style .sig tags stay image tags', () => {
    const hex = 'a'.repeat(64);
    const digest = `sha256:${'b'.repeat(64)}`;
    const ev = (action: string, tag: string) => ({ id: '1', timestamp: '2026-11-26T10:00:00Z', action, target: { repository: 'team/app', tag, digest, mediaType: 'application/vnd.oci.image.index.v1+json' } });
    const parsed = parseEnvelope({ events: [ev('push', `sha256-${hex}`), ev('delete', `sha256-${hex}`), ev('push', `sha256-${hex}.sig`), ev('push', 'v1')] });
    expect(parsed.ignored).toBe(0);
    expect(parsed.events.map((e) => [e.kind, e.kind === 'manifest-delete' ? e.digest : e.tag])).toEqual([
      ['referrers-tag', `sha256-${hex}`],
      ['referrers-tag', `sha256-${hex}`],
      ['tag-push', `sha256-${hex}.sig`],
      ['tag-push', 'v1'],
    ]);
    // A push names the index written (distribution notifies before it links the tag); a delete does not.
    expect(parsed.events.slice(0, 2).map((e) => (e.kind === 'referrers-tag' ? e.pushed : 'other'))).toEqual([digest, undefined]);
  });
});
