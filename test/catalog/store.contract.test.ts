// One contract, two backends: every Store behaviour is checked on SQLite (a file in a temp dir)
// and on PostgreSQL (a throw-away cluster, started once for this file). Insights and build-details
// referrers have files of their own (store-insights.contract.test.ts, store-referrers.contract.test.ts).
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DigestMismatchError, InvalidInputError, StoreError, UsageError } from '../../src/errors.js';
import type { Store } from '../../src/catalog/store.js';
import { openStore, parseStoreUrl } from '../../src/catalog/open.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { explainSearch } from '../../bench/catalog/explain.js';
import type { TagItem } from '../../src/catalog/types.js';
import { MANIFEST_DELETE, SET, TAG_DELETE, type TagEvent, compareEvents } from '../../src/catalog/tagstate.js';
import { SQLITE_MIGRATIONS } from '../../src/catalog/migrations/sqlite.js';
import { POSTGRES_MIGRATIONS } from '../../src/catalog/migrations/postgres.js';
import { BACKENDS, type Backend, CI, OCI, allPages, hex, image, index, sha, t, unique, useContractStore } from './contract/fixtures.js';

const ALL_VERSIONS = SQLITE_MIGRATIONS.map((m) => m.version);
if (POSTGRES_MIGRATIONS.map((m) => m.version).join() !== ALL_VERSIONS.join()) throw new Error('the two dialects have different migration versions');

describe.each(BACKENDS)('catalog store contract: $name', ({ name, start }) => {
  const contract = useContractStore(start);
  let store: Store;
  let backend: Backend;
  beforeAll(() => {
    ({ store, backend } = contract);
  });
  const { repo, open, closeAfter } = contract;

  it('reports its dialect', () => {
    expect(store.dialect).toBe(name);
  });

  it('applies migrations once: a second run, and a second process, are no-ops', async () => {
    const url = await backend.fresh();
    const first = await openStore(url, { migrate: false });
    closeAfter(first);
    expect(await first.migrate()).toEqual(ALL_VERSIONS);
    expect(await first.migrate()).toEqual([]);
    const second = await open(url);
    expect(await second.migrate()).toEqual([]);
    expect(await second.stats()).toEqual({ repositories: 0, liveTags: 0, deletedTags: 0, manifests: 0, configs: 0 });
  });

  it('migrates a fresh database once when several processes start together', async () => {
    const url = await backend.fresh();
    const stores = await Promise.all([0, 1, 2].map(() => openStore(url, { migrate: false })));
    closeAfter(...stores);
    const applied = await Promise.all(stores.map((s) => s.migrate()));
    expect(applied.flat()).toEqual(ALL_VERSIONS);
  });

  it('round-trips a manifest: the raw bytes exactly, annotations, labels', async () => {
    const raw = Buffer.from('{\n  "schemaVersion" : 2,\t"mediaType":"application/vnd.oci.image.manifest.v1+json",\n  "annotations": {"a.b": "\\u00e9\\u0000\u00e9 \ud83d\ude00"}\n}\r\n');
    const digest = sha256Digest(raw);
    const config = sha('round-trip-config');
    expect(await store.hasManifest(digest)).toBe(false);
    expect(await store.putManifest({ digest, mediaType: OCI_MANIFEST, raw, configDigest: config, annotations: { 'a.b': 'é\u0000é 😀' }, artifactType: 'application/x.test', labels: { 'x.y': '1' } })).toEqual({ inserted: true });
    expect(await store.putManifest({ digest, mediaType: OCI_MANIFEST, raw })).toEqual({ inserted: false });
    expect(await store.hasManifest(digest)).toBe(true);
    const got = await store.getImage(digest);
    expect(got).not.toBeNull();
    expect(Buffer.compare(got!.raw, raw)).toBe(0);
    expect(got!.size).toBe(raw.byteLength);
    expect(got!.mediaType).toBe(OCI_MANIFEST);
    expect(got!.artifactType).toBe('application/x.test');
    expect(got!.configDigest).toBe(config);
    expect({ ...got!.annotations }).toEqual({ 'a.b': 'é\ufffdé 😀' });
    expect({ ...got!.labels }).toEqual({ 'x.y': '1' });
    expect(await store.hasReadConfig(config)).toBe(true);
    expect(await store.getImage(sha('nothing'))).toBeNull();
  });

  it('refuses bytes that do not hash to the digest, and malformed digests', async () => {
    const rec = image();
    await expect(store.putManifest({ ...rec, raw: Buffer.from('other bytes') })).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(store.setTag(repo(), 'x', 'sha256:1234', t(1))).rejects.toBeInstanceOf(InvalidInputError);
    await expect(store.hasManifest("sha256:' OR 1=1 --")).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('stores an index with its children, and finds the index by a child annotation', async () => {
    const r = repo();
    const amd = image({ [`${CI}commit_sha`]: hex(1), [`${CI}pipeline_id`]: '1001' });
    const arm = image({ [`${CI}commit_sha`]: hex(1), [`${CI}job_name`]: 'build-arm' });
    const idx = index(
      [
        { record: amd, platform: { os: 'linux', architecture: 'amd64' } },
        { record: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
      { [`${OCI}title`]: 'multi' },
    );
    await store.putManifest(idx);
    expect(await store.hasManifest(amd.digest)).toBe(true);
    expect(await store.setTag(r, '1.0', idx.digest, t(10))).toBe('applied');

    const found = await store.searchImages({ pipeline: '1001' });
    expect(found.items.map((i) => [i.repository, i.tag, i.digest])).toEqual([[r, '1.0', idx.digest]]);
    const item = found.items[0]!;
    expect(item.mediaType).toBe(OCI_INDEX);
    expect(item.platforms).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    expect({ ...item.annotations }).toEqual({ [`${OCI}title`]: 'multi', [`${CI}commit_sha`]: hex(1), [`${CI}pipeline_id`]: '1001', [`${CI}job_name`]: 'build-arm' });
    expect(item.hasBuildDetails).toBe(true);
    expect((await store.searchImages({ annotations: [{ key: `${CI}job_name`, value: 'build-arm' }], repository: r })).items).toHaveLength(1);

    const detail = await store.getImage(idx.digest);
    expect(detail!.children.map((c) => [c.digest, c.platform, c.annotations?.[`${CI}commit_sha`]])).toEqual([
      [amd.digest, { os: 'linux', architecture: 'amd64' }, hex(1)],
      [arm.digest, { os: 'linux', architecture: 'arm64', variant: 'v8' }, hex(1)],
    ]);
    expect(detail!.tags.map((x) => [x.repository, x.tag])).toEqual([[r, '1.0']]);
    const child = await store.getImage(arm.digest);
    expect(child!.parents).toEqual([idx.digest]);
    expect(child!.tags).toEqual([]);

    // A child in a second index: both parents, both tags found by its annotation.
    const idx2 = index([{ record: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }]);
    await store.putManifest(idx2);
    await store.setTag(r, 'arm-only', idx2.digest, t(11));
    expect((await store.getImage(arm.digest))!.parents.sort()).toEqual([idx.digest, idx2.digest].sort());
    const both = await store.searchImages({ annotations: [{ key: `${CI}job_name`, value: 'build-arm' }], repository: r });
    expect(both.items.map((i) => i.tag)).toEqual(['arm-only', '1.0']);
  });

  it('indexes a tag set before its manifest arrived, once the manifest does', async () => {
    const r = repo();
    const rec = image({ [`${CI}pipeline_id`]: '2002' });
    await store.setTag(r, 'early', rec.digest, t(5));
    const before = await store.listTags(r, {});
    expect(before.items.map((i) => [i.tag, i.mediaType])).toEqual([['early', null]]);
    expect((await store.searchImages({ pipeline: '2002' })).items).toEqual([]);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ tagCount: 1, buildTagCount: 0 });
    await store.putManifest(rec);
    expect((await store.searchImages({ pipeline: '2002' })).items.map((i) => i.tag)).toEqual(['early']);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ tagCount: 1, buildTagCount: 1 });
  });

  it('keeps tag history: each digest with when it was replaced', async () => {
    const r = repo();
    const [a, b, c] = [image(), image(), image()];
    for (const rec of [a, b, c]) await store.putManifest(rec);
    await store.setTag(r, 'latest', a.digest, t(1));
    await store.setTag(r, 'latest', b.digest, t(2));
    await store.setTag(r, 'latest', b.digest, t(3)); // pushed again: same digest, no new entry
    await store.setTag(r, 'latest', c.digest, t(4));
    const h = await store.tagHistory(r, 'latest');
    expect(h).toMatchObject({ repository: r, tag: 'latest', digest: c.digest, deletedAt: null, updatedAt: t(4), firstSeen: t(1) });
    expect(h!.entries).toEqual([
      { digest: c.digest, since: t(4), until: null, end: null },
      { digest: b.digest, since: t(2), until: t(4), end: 'replaced' },
      { digest: a.digest, since: t(1), until: t(2), end: 'replaced' },
    ]);
    expect(await store.tagHistory(r, 'nope')).toBeNull();
    expect(await store.tagHistory('no/such', 'latest')).toBeNull();
  });

  it('ignores out-of-order and duplicate events', async () => {
    const r = repo();
    const [a, b] = [image(), image()];
    await store.putManifest(a);
    await store.putManifest(b);

    // set, then an older set: the newer state stays; the older digest goes into history.
    expect(await store.setTag(r, 's', b.digest, t(20))).toBe('applied');
    expect(await store.setTag(r, 's', a.digest, t(10))).toBe('superseded');
    expect(await store.setTag(r, 's', b.digest, t(20))).toBe('duplicate');
    let h = await store.tagHistory(r, 's');
    expect(h!.digest).toBe(b.digest);
    expect(h!.entries.map((e) => [e.digest, e.since, e.until])).toEqual([
      [b.digest, t(20), null],
      [a.digest, t(10), t(20)],
    ]);

    // delete, then an older set: stays deleted.
    expect(await store.deleteTag(r, 'd', t(50))).toBe('applied');
    expect(await store.setTag(r, 'd', a.digest, t(40))).toBe('superseded');
    h = await store.tagHistory(r, 'd');
    expect(h).toMatchObject({ digest: null, deletedAt: t(50) });
    expect((await store.listTags(r, {})).items.map((i) => i.tag)).toEqual(['s']);
    // ... and a newer set brings it back.
    expect(await store.setTag(r, 'd', b.digest, t(60))).toBe('applied');
    expect((await store.tagHistory(r, 'd'))!.digest).toBe(b.digest);

    // set, then an older delete: stays live.
    await store.setTag(r, 'k', a.digest, t(100));
    expect(await store.deleteTag(r, 'k', t(90))).toBe('superseded');
    expect((await store.tagHistory(r, 'k'))!.digest).toBe(a.digest);
    expect(await store.deleteTag(r, 'k', t(90))).toBe('duplicate');

    // equal times are idempotent.
    expect(await store.setTag(r, 'k', a.digest, t(100))).toBe('duplicate');

    // a manifest deletion seen before the (older) push of that manifest still deletes the tag.
    const c = image();
    expect(await store.deleteManifest(r, c.digest, t(205))).toEqual({ tagsDeleted: 0 });
    expect(await store.setTag(r, 'm', c.digest, t(200))).toBe('superseded');
    expect(await store.tagHistory(r, 'm')).toMatchObject({ digest: null, deletedAt: t(205) });
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ tagCount: 3 });
  });

  it('drops a deleted tag from search and listings but keeps its history', async () => {
    const r = repo();
    const rec = image({ [`${CI}pipeline_id`]: '3003', [`${CI}commit_sha`]: hex(3) });
    await store.putManifest(rec);
    await store.setTag(r, 'v1', rec.digest, t(1));
    expect((await store.searchImages({ pipeline: '3003' })).items).toHaveLength(1);
    expect(await store.deleteTag(r, 'v1', t(2))).toBe('applied');
    expect((await store.searchImages({ pipeline: '3003' })).items).toEqual([]);
    expect((await store.searchImages({ commit: hex(3) })).items).toEqual([]);
    expect((await store.searchImages({ repository: r })).items).toEqual([]);
    expect((await store.listTags(r, {})).items).toEqual([]);
    expect((await store.getImage(rec.digest))!.tags).toEqual([]);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ name: r, tagCount: 0, buildTagCount: 0 });
    const h = await store.tagHistory(r, 'v1');
    expect(h).toMatchObject({ digest: null, deletedAt: t(2), updatedAt: t(2) });
    expect(h!.entries).toEqual([{ digest: rec.digest, since: t(1), until: t(2), end: 'deleted' }]);
  });

  it('deletes the tags of a deleted manifest, in that repository only', async () => {
    const [r1, r2] = [repo('one'), repo('two')];
    const [a, b] = [image(), image()];
    await store.putManifest(a);
    await store.putManifest(b);
    await store.setTag(r1, 'x', a.digest, t(1));
    await store.setTag(r1, 'y', a.digest, t(1));
    await store.setTag(r1, 'z', b.digest, t(1));
    await store.setTag(r2, 'x', a.digest, t(1));
    expect(await store.deleteManifest(r1, a.digest, t(2))).toEqual({ tagsDeleted: 2 });
    expect(await store.deleteManifest(r1, a.digest, t(2))).toEqual({ tagsDeleted: 0 });
    expect((await store.listTags(r1, {})).items.map((i) => i.tag)).toEqual(['z']);
    expect((await store.listTags(r2, {})).items.map((i) => i.tag)).toEqual(['x']);
    // A manifest deletion older than the tag's move to it does nothing.
    await store.setTag(r2, 'x', b.digest, t(10));
    expect(await store.deleteManifest(r2, b.digest, t(5))).toEqual({ tagsDeleted: 0 });
    expect((await store.listTags(r2, {})).items.map((i) => i.digest)).toEqual([b.digest]);
  });

  it('reconciles a repository with a crawl', async () => {
    const r = repo();
    const d = [image(), image(), image(), image(), image(), image()];
    for (const rec of d) await store.putManifest(rec);
    await store.setTag(r, 'a', d[0]!.digest, t(10));
    await store.setTag(r, 'b', d[1]!.digest, t(10));
    await store.setTag(r, 'c', d[2]!.digest, t(10));
    await store.setTag(r, 'e', d[5]!.digest, t(30)); // pushed after the crawl began
    const live = new Map([
      ['a', d[0]!.digest],
      ['b', d[3]!.digest],
      ['new', d[4]!.digest],
    ]);
    expect(await store.reconcileRepository(r, live, t(20))).toEqual({ added: 1, updated: 1, deleted: 1, unchanged: 1, skipped: 1 });
    const tags = await store.listTags(r, {});
    expect(tags.items.map((i) => [i.tag, i.digest])).toEqual([
      ['e', d[5]!.digest],
      ['b', d[3]!.digest],
      ['new', d[4]!.digest],
      ['a', d[0]!.digest],
    ]);
    expect(await store.tagHistory(r, 'c')).toMatchObject({ digest: null, deletedAt: t(20) });
    expect(await store.reconcileRepository(r, live, t(21))).toEqual({ added: 0, updated: 0, deleted: 0, unchanged: 3, skipped: 1 });
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ tagCount: 4 });
    // An empty crawl deletes everything older than it.
    expect(await store.reconcileRepository(r, new Map(), t(40))).toMatchObject({ deleted: 4 });
    expect((await store.listTags(r, {})).items).toEqual([]);

    // A new tag on a manifest whose deletion (dated after the crawl) arrived first ends deleted,
    // as setTag would leave it.
    const r2 = repo();
    await store.deleteManifest(r2, d[0]!.digest, t(25));
    expect(await store.reconcileRepository(r2, new Map([['gone', d[0]!.digest], ['kept', d[1]!.digest]]), t(20))).toMatchObject({ added: 2 });
    expect((await store.listTags(r2, {})).items.map((i) => i.tag)).toEqual(['kept']);
    expect(await store.tagHistory(r2, 'gone')).toMatchObject({ digest: null, deletedAt: t(25), updatedAt: t(25), firstSeen: t(20) });
    expect((await store.listRepositories({ q: r2 })).items[0]).toMatchObject({ tagCount: 1, lastUpdated: t(25) });
  });

  it('searches by annotations (AND, key exists), commit prefix, pipeline and ref', async () => {
    const r = repo();
    const team = 'com.example.team';
    const x = image({ [`${CI}commit_sha`]: hex(10), [`${CI}pipeline_id`]: '501', [`${CI}commit_ref_name`]: 'main', [team]: 'payments' });
    const y = image({ [`${OCI}revision`]: hex(11), [`${CI}pipeline_id`]: '502', [`${CI}commit_ref_name`]: 'v1.2.0', [team]: 'payments' });
    const z = image({ [`${CI}commit_sha`]: hex(12), [`${CI}pipeline_id`]: '503', [`${CI}commit_ref_name`]: 'main' });
    for (const rec of [x, y, z]) await store.putManifest(rec);
    await store.setTag(r, 'x', x.digest, t(1));
    await store.setTag(r, 'y', y.digest, t(2));
    await store.setTag(r, 'z', z.digest, t(3));
    const tagsOf = async (q: Parameters<Store['searchImages']>[0]) => (await store.searchImages({ repository: r, ...q })).items.map((i) => i.tag);

    expect(await tagsOf({ annotations: [{ key: team, value: 'payments' }] })).toEqual(['y', 'x']);
    expect(await tagsOf({ annotations: [{ key: team, value: 'payments' }, { key: `${CI}commit_ref_name`, value: 'main' }] })).toEqual(['x']);
    expect(await tagsOf({ annotations: [{ key: team }] })).toEqual(['y', 'x']);
    expect(await tagsOf({ annotations: [{ key: team }, { key: `${OCI}revision` }] })).toEqual(['y']);
    expect(await tagsOf({ annotations: [{ key: team, value: 'pay' }] })).toEqual([]);
    expect(await tagsOf({ commit: hex(10) })).toEqual(['x']);
    expect(await tagsOf({ commit: hex(11).slice(0, 4) })).toEqual(['y']); // via org.opencontainers.image.revision
    expect(await tagsOf({ commit: hex(12).slice(0, 9).toUpperCase() })).toEqual(['z']);
    expect(await tagsOf({ pipeline: '502' })).toEqual(['y']);
    expect(await tagsOf({ pipeline: '50' })).toEqual([]);
    expect(await tagsOf({ ref: 'main' })).toEqual(['z', 'x']);
    expect(await tagsOf({ ref: 'main', pipeline: '503' })).toEqual(['z']);
    expect(await tagsOf({ ref: 'main', commit: hex(10).slice(0, 6), annotations: [{ key: team }] })).toEqual(['x']);
    expect(await tagsOf({ tag: 'y' })).toEqual(['y']);
    expect(await tagsOf({ tag: 'y', ref: 'main' })).toEqual([]);
    expect(await tagsOf({})).toEqual(['z', 'y', 'x']);
    expect((await store.searchImages({ repository: 'no/such/repo', ref: 'main' })).items).toEqual([]);

    for (const bad of ['abc', '', 'xyz123', 'abcd-']) {
      await expect(store.searchImages({ commit: bad })).rejects.toBeInstanceOf(InvalidInputError);
    }
    await expect(store.searchImages({ limit: 0 })).rejects.toBeInstanceOf(UsageError);
    await expect(store.searchImages({ annotations: Array.from({ length: 17 }, (_, i) => ({ key: `com.example.k${i}` })) })).rejects.toBeInstanceOf(UsageError);
    await expect(store.searchImages({ cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(UsageError);
  });

  it('searches long annotation values exactly', async () => {
    const r = repo();
    const long = `${'x'.repeat(300)}-tail`;
    const a = image({ 'com.example.long': long });
    const b = image({ 'com.example.long': `${'x'.repeat(300)}-other` });
    const c = image({ 'com.example.long': 'y'.repeat(256) });
    for (const [i, rec] of [a, b, c].entries()) {
      await store.putManifest(rec);
      await store.setTag(r, `t${i}`, rec.digest, t(i));
    }
    const tagsOf = async (value: string) => (await store.searchImages({ repository: r, annotations: [{ key: 'com.example.long', value }] })).items.map((i) => i.tag);
    expect(await tagsOf(long)).toEqual(['t0']);
    expect(await tagsOf('x'.repeat(300))).toEqual([]);
    expect(await tagsOf('y'.repeat(256))).toEqual(['t2']);
    expect((await store.getImage(a.digest))!.annotations['com.example.long']).toBe(long);
  });

  it('pages with keyset cursors: no duplicates, no gaps, stable order', async () => {
    const r = repo();
    const rec = image({ 'com.example.paging': 'yes', [`${CI}commit_ref_name`]: 'paging' });
    await store.putManifest(rec);
    // 25 tags over 10 distinct times, so many share an update time.
    for (let i = 0; i < 25; i++) await store.setTag(r, `tag-${String(i).padStart(2, '0')}`, rec.digest, t(i % 10));

    const tags = await allPages((cursor) => store.listTags(r, { limit: 7, ...(cursor ? { cursor } : {}) }));
    expect(tags.pages).toBe(4);
    expect(tags.items).toHaveLength(25);
    expect(new Set(tags.items.map((i) => i.tag)).size).toBe(25);
    const expected = tags.items.map((i) => i.tag).slice();
    const sorted = [...tags.items].sort((p, q) => q.updatedAt.getTime() - p.updatedAt.getTime() || (p.tag < q.tag ? -1 : 1)).map((i) => i.tag);
    expect(expected).toEqual(sorted);

    for (const query of [{ annotations: [{ key: 'com.example.paging', value: 'yes' }] }, { annotations: [{ key: 'com.example.paging' }] }, { ref: 'paging' }, {}]) {
      const found = await allPages((cursor) => store.searchImages({ repository: r, ...query, limit: 6, ...(cursor ? { cursor } : {}) }));
      expect(found.pages).toBe(5);
      expect(found.items).toHaveLength(25);
      expect(new Set(found.items.map((i) => i.tag)).size).toBe(25);
      const times = found.items.map((i) => i.updatedAt.getTime());
      expect(times).toEqual([...times].sort((p, q) => q - p));
    }

    const base = `pages${unique()}-`;
    for (let i = 0; i < 12; i++) await store.setTag(`${base}${String(i).padStart(2, '0')}/x`, 'latest', rec.digest, t(1));
    const repos = await allPages((cursor) => store.listRepositories({ q: base, limit: 5, ...(cursor ? { cursor } : {}) }));
    expect(repos.pages).toBe(3);
    expect(repos.items.map((x) => x.name)).toEqual(Array.from({ length: 12 }, (_, i) => `${base}${String(i).padStart(2, '0')}/x`));
  });

  it('treats SQL-looking and pattern characters literally', async () => {
    const evil = ["' OR 1=1 --", '%', '_', '\\', "'; DROP TABLE tags; --", '50%_off\\'];
    const r = repo("'; DROP TABLE tags; --");
    const recs = evil.map((v) => image({ 'com.example.v': v, [`${CI}commit_ref_name`]: v }));
    for (const [i, rec] of recs.entries()) {
      await store.putManifest(rec);
      await store.setTag(r, evil[i]!, rec.digest, t(i));
    }
    for (const [i, v] of evil.entries()) {
      const byValue = await store.searchImages({ annotations: [{ key: 'com.example.v', value: v }] });
      expect(byValue.items.map((x) => x.digest)).toEqual([recs[i]!.digest]);
      expect((await store.searchImages({ ref: v, repository: r })).items.map((x) => x.tag)).toEqual([v]);
      expect((await store.searchImages({ tag: v })).items.map((x) => x.tag)).toEqual([v]);
      expect((await store.searchImages({ pipeline: v })).items).toEqual([]);
    }
    expect((await store.searchImages({ annotations: [{ key: "' OR 1=1 --" }] })).items).toEqual([]);
    expect((await store.searchImages({ annotations: [{ key: '%' }] })).items).toEqual([]);
    expect((await store.listTags(r, {})).items).toHaveLength(evil.length);
    expect((await store.listRepositories({ q: "'; drop" })).items.map((x) => x.name)).toEqual([r]);
    expect((await store.listRepositories({ q: '%' })).items.map((x) => x.name)).toEqual([]);
    expect((await store.listRepositories({ q: '_' })).items.map((x) => x.name)).toEqual([]);
    await expect(store.searchImages({ commit: "' OR 1=1 --" })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(store.searchImages({ commit: 'abcd%' })).rejects.toBeInstanceOf(InvalidInputError);
    expect((await store.stats()).liveTags).toBeGreaterThan(0);
  });

  it('falls back to config labels when a manifest carries no build annotations', async () => {
    const r = repo();
    const config = sha(`labels-${unique()}`);
    const plain = image({ 'com.example.other': 'x' }, { config });
    await store.putManifest(plain);
    await store.setTag(r, 'plain', plain.digest, t(1));
    expect(await store.hasReadConfig(config)).toBe(false);
    expect((await store.searchImages({ commit: hex(20) })).items).toEqual([]);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ buildTagCount: 0 });

    await store.putConfigLabels(config, { 'org.label-schema.vcs-ref': hex(20), [`${OCI}source`]: 'https://gitlab.example.com/g/p', maintainer: 'someone' });
    expect(await store.hasReadConfig(config)).toBe(true);
    const found = await store.searchImages({ commit: hex(20).slice(0, 8) });
    expect(found.items.map((i) => i.tag)).toEqual(['plain']);
    expect({ ...found.items[0]!.labelAnnotations }).toEqual({ [`${OCI}revision`]: hex(20), [`${OCI}source`]: 'https://gitlab.example.com/g/p' });
    expect({ ...found.items[0]!.annotations }).toEqual({ 'com.example.other': 'x' });
    expect(found.items[0]!.hasBuildDetails).toBe(true);
    expect((await store.searchImages({ annotations: [{ key: `${OCI}source`, value: 'https://gitlab.example.com/g/p' }], repository: r })).items).toHaveLength(1);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ buildTagCount: 1 });
    expect({ ...(await store.getImage(plain.digest))!.labels }).toMatchObject({ maintainer: 'someone' });

    // A manifest with build annotations is not searchable by its labels.
    const annotated = image({ [`${CI}commit_sha`]: hex(21) }, { labels: { [`${OCI}revision`]: hex(22) } });
    await store.putManifest(annotated);
    await store.setTag(r, 'annotated', annotated.digest, t(2));
    expect((await store.searchImages({ commit: hex(21) })).items.map((i) => i.tag)).toEqual(['annotated']);
    expect((await store.searchImages({ commit: hex(22) })).items).toEqual([]);
  });

  it('reads a page of tags whole: an index with its platforms, its children\'s labels, and a child or a manifest the catalog lacks', async () => {
    const r = repo();
    const amd = image({ 'com.example.kind': 'amd' }, { labels: { [`${OCI}revision`]: hex(30), maintainer: 'someone' } });
    const arm = image({ 'com.example.kind': 'arm' }, { labels: { [`${OCI}source`]: 'https://gitlab.example.com/g/q' } });
    const idx = index(
      [
        { record: amd, platform: { os: 'linux', architecture: 'amd64' } },
        { record: arm, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      ],
      { [`${OCI}title`]: 'two' },
    );
    // The catalog gets the index with its first platform manifest only.
    await store.putManifest({ ...idx, children: idx.children!.map((c, i) => (i === 0 ? c : { digest: c.digest, mediaType: OCI_MANIFEST, size: c.size!, platform: c.platform! })) });
    await store.setTag(r, 'multi', idx.digest, t(1));
    const single = image({ [`${CI}commit_sha`]: hex(31) });
    await store.putManifest(single);
    await store.setTag(r, 'single', single.digest, t(2));
    await store.setTag(r, 'unread', sha(`never stored ${unique()}`), t(3));

    const page = await store.listTags(r, {});
    expect(page.items.map((i) => i.tag)).toEqual(['unread', 'single', 'multi']);
    const [unread, one, multi] = page.items as [TagItem, TagItem, TagItem];
    expect(unread).toMatchObject({ mediaType: null, platforms: [], hasBuildDetails: false });
    expect({ ...unread.annotations, ...unread.labelAnnotations }).toEqual({});
    expect(one.mediaType).toBe(OCI_MANIFEST);
    expect({ ...one.annotations }).toEqual({ [`${CI}commit_sha`]: hex(31) });
    expect(one.platforms).toEqual([]);
    expect(multi.mediaType).toBe(OCI_INDEX);
    expect(multi.platforms).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    expect({ ...multi.annotations }).toEqual({ [`${OCI}title`]: 'two', 'com.example.kind': 'amd' });
    expect({ ...multi.labelAnnotations }).toEqual({ [`${OCI}revision`]: hex(30) });
    expect(multi.hasBuildDetails).toBe(true);
    const found = await store.searchImages({ commit: hex(30) });
    expect(found.items).toEqual([multi]);
  });

  it('keeps sync checkpoints', async () => {
    const key = `crawl:${repo()}`;
    expect(await store.getCheckpoint(key)).toBeUndefined();
    await store.setCheckpoint(key, { last: 'group/app', n: 3 });
    await store.setCheckpoint(key, { last: 'group/zzz', n: 4 });
    expect(await store.getCheckpoint(key)).toEqual({ last: 'group/zzz', n: 4 });
    await store.deleteCheckpoint(key);
    expect(await store.getCheckpoint(key)).toBeUndefined();
  });

  it('lets one holder at a time run under a lock, across store instances', async () => {
    const other = await open();
    const lock = `reconcile-${unique()}`;
    let inner: unknown;
    const outer = await store.withLock(lock, async () => {
      inner = await other.withLock(lock, async () => 'should not run');
      return 'ran';
    });
    expect(outer).toEqual({ ran: true, value: 'ran' });
    expect(inner).toEqual({ ran: false });
    expect(await other.withLock(lock, async () => 2)).toEqual({ ran: true, value: 2 });
    // Released when fn throws.
    await expect(store.withLock(lock, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await other.withLock(lock, async () => 3)).toEqual({ ran: true, value: 3 });
    // Other names are independent.
    const nested = await store.withLock(lock, () => other.withLock(`${lock}-b`, async () => 'b'));
    expect(nested).toEqual({ ran: true, value: { ran: true, value: 'b' } });
  });

  it('uses an index for key=value and commit prefix search', async () => {
    const options = { disableSeqScan: true };
    const indexed = name === 'sqlite' ? /USING (COVERING )?INDEX tag_terms_search/ : /(Index Only Scan|Index Scan|Bitmap Index Scan) (using|on) tag_terms_search/;
    const eq = await explainSearch(store, { annotations: [{ key: 'com.example.team', value: 'payments' }] }, options);
    expect(eq.plan.join('\n')).toMatch(indexed);
    const commit = await explainSearch(store, { commit: 'abcd12' }, options);
    expect(commit.plan.join('\n')).toMatch(indexed);
    expect(commit.sql).not.toMatch(/LIKE/i);
    const both = await explainSearch(store, { pipeline: '1', ref: 'main', repository: 'no/such' }, options);
    expect(both.plan.join('\n')).toMatch(indexed);
  });

  it('answers alike whichever side drives a search with common filters', async () => {
    // 1,200 tags over two images: every filter here matches more terms than the planner's probe
    // cap, so key-exists and small-repository searches walk the live tags instead of the terms.
    const r = repo();
    const main = image({ 'com.example.common': 'a', [`${CI}commit_ref_name`]: 'main' });
    const other = image({ 'com.example.common': 'b', [`${CI}commit_ref_name`]: 'dev' });
    await store.putManifest(main);
    await store.putManifest(other);
    const live = new Map(Array.from({ length: 1200 }, (_, i) => [`t${String(i).padStart(4, '0')}`, (i % 3 === 0 ? other : main).digest] as const));
    expect(await store.reconcileRepository(r, live, t(1))).toMatchObject({ added: 1200 });
    await store.setTag(r, 't0001', main.digest, t(2)); // one newer tag, to check the order
    const all = async (query: Parameters<Store['searchImages']>[0]) =>
      (await allPages((cursor) => store.searchImages({ ...query, limit: 250, ...(cursor ? { cursor } : {}) }))).items.map((i) => i.tag);

    const exists = await all({ repository: r, annotations: [{ key: 'com.example.common' }] });
    expect(exists).toHaveLength(1200);
    expect(new Set(exists).size).toBe(1200);
    expect(exists[0]).toBe('t0001');
    const mainTags = await all({ repository: r, ref: 'main' });
    expect(mainTags).toHaveLength(800);
    expect(new Set(mainTags).size).toBe(800);
    expect(mainTags[0]).toBe('t0001');
    expect(await all({ ref: 'main', annotations: [{ key: 'com.example.common', value: 'a' }] })).toEqual(mainTags);
    expect((await all({ repository: r, annotations: [{ key: 'com.example.common' }, { key: 'com.example.common', value: 'b' }] })).sort()).toEqual(
      [...live].filter(([, d]) => d === other.digest).map(([tag]) => tag),
    );
    expect(await all({ tag: 't0003', annotations: [{ key: 'com.example.common' }] })).toEqual(['t0003']);
    const walk = await explainSearch(store, { repository: r, annotations: [{ key: 'com.example.common' }] }, { disableSeqScan: true });
    expect(walk.sql).toMatch(/FROM tags g/);
    expect(walk.plan.join('\n')).toMatch(/tags_live_repo_id/);
  });

  it('converges: events applied in any order end as if applied in time order', async () => {
    // Three images, two with build details; search and counts must follow the tags too.
    const images = [image({ 'com.example.prop': 'v0', [`${CI}pipeline_id`]: '9000' }), image({ 'com.example.prop': 'v1' }), image({ 'com.example.prop': 'v2', [`${CI}pipeline_id`]: '9002' })];
    for (const rec of images) await store.putManifest(rec);
    const digests = images.map((m) => m.digest);
    const tags = ['a', 'b', 'c'];
    type Ev = { kind: 'set'; tag: string; digest: string; at: number } | { kind: 'delete'; tag: string; at: number } | { kind: 'deleteManifest'; digest: string; at: number };
    const ev: fc.Arbitrary<Ev> = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), tag: fc.constantFrom(...tags), digest: fc.constantFrom(...digests), at: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ kind: fc.constant('delete' as const), tag: fc.constantFrom(...tags), at: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ kind: fc.constant('deleteManifest' as const), digest: fc.constantFrom(...digests), at: fc.integer({ min: 1, max: 12 }) }),
    );
    const key = (e: Ev): TagEvent => ({ at: e.at, kind: e.kind === 'set' ? SET : e.kind === 'delete' ? TAG_DELETE : MANIFEST_DELETE, digest: e.kind === 'delete' ? '' : e.digest });
    const apply = async (r: string, e: Ev) => {
      if (e.kind === 'set') await store.setTag(r, e.tag, e.digest, t(e.at));
      else if (e.kind === 'delete') await store.deleteTag(r, e.tag, t(e.at));
      else await store.deleteManifest(r, e.digest, t(e.at));
    };
    const snapshot = async (r: string) => ({
      history: await Promise.all(tags.map(async (tag) => {
        const h = await store.tagHistory(r, tag);
        return h && { ...h, repository: undefined };
      })),
      live: (await store.listTags(r, {})).items.map((i) => [i.tag, i.digest, i.updatedAt.getTime()]),
      counts: (await store.listRepositories({ q: r })).items.map((x) => [x.tagCount, x.buildTagCount, x.lastUpdated.getTime()]),
      // Search orders newest first and breaks ties by row id, which records when a tag was first
      // seen, not event time; so the order within one instant is compared by name.
      found: await Promise.all(
        ['v0', 'v1', 'v2'].map(async (v) => {
          const items = (await store.searchImages({ repository: r, annotations: [{ key: 'com.example.prop', value: v }] })).items.map((i) => [i.tag, i.updatedAt.getTime()] as const);
          for (let k = 1; k < items.length; k++) expect(items[k - 1]![1]).toBeGreaterThanOrEqual(items[k]![1]);
          return [...items].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]));
        }),
      ),
    });
    const scenario = fc
      .array(ev, { minLength: 1, maxLength: 14 })
      .chain((events) => fc.tuple(fc.constant(events), fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }), fc.subarray(events)));
    await fc.assert(
      fc.asyncProperty(scenario, async ([events, shuffled, duplicates]) => {
        const n = unique();
        const inOrder = `prop${n}/sorted`;
        const anyOrder = `prop${n}/shuffled`;
        for (const e of [...events].sort((p, q) => compareEvents(key(p), key(q)))) await apply(inOrder, e);
        for (const e of [...shuffled, ...duplicates]) await apply(anyOrder, e);
        expect(await snapshot(anyOrder)).toEqual(await snapshot(inOrder));
      }),
      { numRuns: Number(process.env.TAGTRAIL_PROPERTY_RUNS ?? 40), ...(process.env.TAGTRAIL_PROPERTY_SEED ? { seed: Number(process.env.TAGTRAIL_PROPERTY_SEED) } : {}) },
    );
  });

  // ---- insights (how images were built): see docs/insights.md

  it('remembers manifests it cannot read, by digest, and updates the reason', async () => {
    const digest = `sha256:${'e'.repeat(63)}1`;
    expect(await store.unreadable(digest)).toBeUndefined();
    await store.markUnreadable(digest, 'UNSUPPORTED', 'schema 1 manifest', t(1));
    expect(await store.unreadable(digest)).toEqual({ code: 'UNSUPPORTED', reason: 'schema 1 manifest' });
    await store.markUnreadable(digest, 'INVALID_MANIFEST', 'nests too deep', t(2));
    expect(await store.unreadable(digest)).toEqual({ code: 'INVALID_MANIFEST', reason: 'nests too deep' });
    expect(await store.unreadable(`sha256:${'e'.repeat(63)}2`)).toBeUndefined();
    await expect(store.markUnreadable('sha256:nothex', 'UNSUPPORTED', 'x', t(1))).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('counts what it holds', async () => {
    const s = await store.stats();
    expect(s.repositories).toBeGreaterThan(5);
    expect(s.manifests).toBeGreaterThan(10);
    expect(s.liveTags).toBeGreaterThan(0);
    expect(s.deletedTags).toBeGreaterThan(0);
  });
});

describe('openStore URLs', () => {
  it('accepts sqlite: and postgres URLs', () => {
    expect(parseStoreUrl('sqlite:')).toEqual({ kind: 'sqlite', path: './tagtrail.db' });
    expect(parseStoreUrl('sqlite:./x.db')).toEqual({ kind: 'sqlite', path: './x.db' });
    expect(parseStoreUrl('sqlite::memory:')).toEqual({ kind: 'sqlite', path: ':memory:' });
    expect(parseStoreUrl('sqlite:///var/lib/tagtrail.db')).toEqual({ kind: 'sqlite', path: '/var/lib/tagtrail.db' });
    expect(parseStoreUrl('postgres://u:p@h/db')).toEqual({ kind: 'postgres', url: 'postgres://u:p@h/db' });
    expect(parseStoreUrl('postgresql://h/db')).toEqual({ kind: 'postgres', url: 'postgresql://h/db' });
  });

  it('refuses other forms with a usage error naming the accepted ones, without the password', async () => {
    for (const url of ['mysql://user:hunter2secret@db/x', 'tagtrail.db', 'sqlite3:x.db', '']) {
      const err = await openStore(url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      const text = `${(err as UsageError).message} ${(err as UsageError).hint}`;
      expect(text).toContain('sqlite:');
      expect(text).toContain('postgres://');
      expect(text).not.toContain('hunter2secret');
    }
  });

  it('never shows the PostgreSQL password in an error', async () => {
    const err = await openStore('postgres://tagtrail:hunter2secret@127.0.0.1:1/catalog').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    const e = err as StoreError;
    expect(e.message).toContain('postgres://tagtrail:***@127.0.0.1:1/catalog');
    expect(`${e.message} ${e.hint ?? ''} ${e.stack ?? ''} ${String(e.cause)}`).not.toContain('hunter2secret');
  });

  it('opens an in-memory SQLite catalog', async () => {
    const s = await openStore('sqlite::memory:');
    expect(s.dialect).toBe('sqlite');
    expect(await s.stats()).toMatchObject({ manifests: 0 });
    await s.close();
  });
});