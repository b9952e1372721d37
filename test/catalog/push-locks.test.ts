// Tag pushes beside other writers on PostgreSQL take every lock they need in the order of
// driver.ts LOCK_LEVELS, the webhook's batches (pushTags) too: a transaction whose locks fall
// short runs again alone, under the catalog-wide lock, and holds up every other writer. Each
// case counts the attempts of the store's transactions and reads the tags back with SQL. SQLite
// has one writer by design and is not part of this file.
import { describe, expect, it } from 'vitest';
import type { Driver, Queryable } from '../../src/catalog/sql/driver.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { type Catalog, useBackend } from './backends.js';
import { CI, hex, image, index, sha, t } from './contract/fixtures.js';

/** Attempts of the driver's writeAlongside transactions: beside other writers, or again alone. */
function countAttempts(driver: Driver): { beside: number; alone: number } {
  const count = { beside: 0, alone: 0 };
  const d = driver as { -readonly [K in keyof Driver]: Driver[K] };
  const alongside = d.writeAlongside!.bind(driver);
  d.writeAlongside = (fn) =>
    alongside((q: Queryable) => {
      if (q.lock) count.beside++;
      else count.alone++;
      return fn(q);
    });
  return count;
}

const annotated = (n: number): ManifestRecord => image({ [`${CI}pipeline_id`]: String(7000 + n), [`${CI}commit_sha`]: hex(700 + n) });
/** An image without build annotations whose config labels were read: a tag on an index listing it is searchable by them. */
const labelled = (n: number): ManifestRecord => image({}, { config: sha(`config ${n}`), labels: { 'com.gitlab.ci.pipeline.id': String(8000 + n) } });
const AMD64 = { os: 'linux', architecture: 'amd64' };
const ARM64 = { os: 'linux', architecture: 'arm64' };

/** An index of `stored` (a platform manifest the catalog has: listed without its record, as ingest sends it) and `fresh` (with its record). */
function indexWithStoredChild(stored: ManifestRecord, fresh: ManifestRecord): ManifestRecord {
  const whole = index([
    { record: stored, platform: AMD64 },
    { record: fresh, platform: ARM64 },
  ]);
  return { ...whole, children: whole.children!.map(({ manifest, ...child }) => (child.digest === stored.digest ? child : { ...child, manifest: manifest! })) };
}

async function tagsOf(catalog: Catalog, repository: string): Promise<string[][]> {
  const rows = await catalog.sql(`SELECT g.name, g.digest FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name = '${repository}' ORDER BY g.name`);
  return rows.map((r) => [String(r.name), String(r.digest)]);
}

describe('tag pushes beside other writers take their locks in order (postgres)', () => {
  const backend = useBackend('postgres');

  it('a new index listing a platform manifest the catalog has runs once beside the others, alone and in a batch', async () => {
    const catalog = await backend().fresh();
    const store = catalog.store as SqlStore;
    const shared = labelled(1);
    await store.pushTag({ repository: 'group/app', tag: 'amd64', digest: shared.digest, at: t(1), manifest: shared });
    const attempts = countAttempts(store.driver);

    const single = indexWithStoredChild(shared, labelled(2));
    expect(await store.pushTag({ repository: 'group/app', tag: 'v1', digest: single.digest, at: t(2), manifest: single })).toEqual({ outcome: 'applied', inserted: true });
    expect(attempts).toEqual({ beside: 1, alone: 0 });

    const batched = indexWithStoredChild(shared, labelled(3));
    const other = annotated(4);
    const results = await store.pushTags([
      { repository: 'group/app', tag: 'v2', digest: batched.digest, at: t(3), manifest: batched },
      { repository: 'group/other', tag: 'v2', digest: other.digest, at: t(3), manifest: other },
    ]);
    expect(results).toEqual([
      { outcome: 'applied', inserted: true },
      { outcome: 'applied', inserted: true },
    ]);
    expect(attempts).toEqual({ beside: 2, alone: 0 });

    expect(await tagsOf(catalog, 'group/app')).toEqual([
      ['amd64', shared.digest],
      ['v1', single.digest],
      ['v2', batched.digest],
    ]);
    // The stored platform manifest's config labels are among the index's tags' terms.
    expect((await store.searchImages({ pipeline: '8001' })).items.map((i) => i.tag).sort()).toEqual(['amd64', 'v1', 'v2']);
  });

  it('a batch of new images, of an index with its platform manifests, and of stored images runs once beside the others', async () => {
    const catalog = await backend().fresh();
    const store = catalog.store as SqlStore;
    const attempts = countAttempts(store.driver);
    const [a, b] = [annotated(10), labelled(11)];
    const multi = index([
      { record: annotated(12), platform: AMD64 },
      { record: labelled(13), platform: ARM64 },
    ]);
    await store.pushTags([
      { repository: 'group/app', tag: 'a', digest: a.digest, at: t(1), manifest: a },
      { repository: 'group/app', tag: 'b', digest: b.digest, at: t(1), manifest: b },
      { repository: 'group/app', tag: 'multi', digest: multi.digest, at: t(1), manifest: multi },
    ]);
    await store.pushTags([
      { repository: 'group/app', tag: 'latest', digest: multi.digest, at: t(2) },
      { repository: 'group/app', tag: 'a', digest: b.digest, at: t(2) },
      { repository: 'group/app', tag: 'b', digest: a.digest, at: t(0) },
    ]);
    expect(attempts).toEqual({ beside: 2, alone: 0 });
    expect(await tagsOf(catalog, 'group/app')).toEqual([
      ['a', b.digest],
      ['b', b.digest],
      ['latest', multi.digest],
      ['multi', multi.digest],
    ]);
  });
});
