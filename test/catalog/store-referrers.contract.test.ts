// The store contract, build-details referrers part: a referrer's details reach its subject's
// tags in the same repository, on SQLite and PostgreSQL alike.
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors.js';
import type { Store } from '../../src/catalog/store.js';
import { BACKENDS, CI, OCI, hex, image, index, sha, t, useContractStore } from './contract/fixtures.js';

describe.each(BACKENDS)('catalog store contract, build-details referrers: $name', ({ start }) => {
  const contract = useContractStore(start);
  let store: Store;
  beforeAll(() => {
    ({ store } = contract);
  });
  const { repo } = contract;
  /** Tells this file's referrer and referrers-tag digests apart. */
  let nonce = 0;

  const BUILD = 'application/vnd.tagtrail.build.v1+json';
  const referrer = (subject: string, annotations: Record<string, string>) => ({ digest: sha(`referrer-${++nonce}`), subjectDigest: subject, artifactType: BUILD, annotations });

  it('a referrer makes its subject\'s tags searchable by pipeline and commit, with build source referrer; the newest wins', async () => {
    const r = repo();
    const plain = image({ 'com.example.other': 'x' });
    await store.putManifest(plain);
    await store.setTag(r, 'v1', plain.digest, t(1));
    expect((await store.searchImages({ pipeline: '7001' })).items).toEqual([]);
    expect(await store.manifestInsight(plain.digest)).toMatchObject({ buildSource: 'none' });

    const first = referrer(plain.digest, { [`${CI}pipeline_id`]: '7001', [`${CI}commit_sha`]: hex(40), [`${OCI}created`]: '2026-01-01T10:00:00Z' });
    expect(await store.hasReferrer(first.digest)).toBe(false);
    await store.putReferrer(first);
    expect(await store.hasReferrer(first.digest)).toBe(true);
    expect(await store.referrerSubject(first.digest)).toBe(plain.digest);
    expect(await store.referrerSubject(sha(`never-stored-${nonce}`))).toBeNull();
    await store.setReferrersTag(r, plain.digest, sha(`tag-${nonce}`), [first.digest]);
    expect(await store.referrersTagDigest(r, plain.digest)).toBe(sha(`tag-${nonce}`));
    expect(await store.referrersTagSubjects(r)).toEqual([plain.digest]);

    const byPipeline = (await store.searchImages({ pipeline: '7001' })).items;
    expect(byPipeline.map((i) => [i.repository, i.tag, i.digest])).toEqual([[r, 'v1', plain.digest]]);
    expect(byPipeline[0]!.referrer?.digest).toBe(first.digest);
    expect(byPipeline[0]!.hasBuildDetails).toBe(true);
    expect((await store.searchImages({ commit: hex(40).slice(0, 10) })).items.map((i) => i.tag)).toEqual(['v1']);
    expect((await store.listTags(r, {})).items[0]!.referrer?.digest).toBe(first.digest);
    expect(await store.manifestInsight(plain.digest)).toMatchObject({ buildSource: 'referrer' });
    expect((await store.getImage(plain.digest))!.referrers?.map((x) => x.digest)).toEqual([first.digest]);
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ buildTagCount: 1 });

    // A newer referrer: its annotations are the ones searched.
    const second = referrer(plain.digest, { [`${CI}pipeline_id`]: '7002', [`${OCI}created`]: '2026-01-02T10:00:00Z' });
    await store.putReferrer(second);
    await store.setReferrersTag(r, plain.digest, sha(`tag-${nonce}`), [first.digest, second.digest]);
    expect((await store.searchImages({ pipeline: '7002' })).items.map((i) => i.referrer?.digest)).toEqual([second.digest]);
    expect((await store.searchImages({ pipeline: '7001' })).items).toEqual([]);
    expect((await store.getImage(plain.digest))!.referrers?.map((x) => x.digest)).toEqual([second.digest, first.digest]);

    // A referrer stored for another subject is not linked to this one.
    const other = referrer(sha(`someone-else-${nonce}`), { [`${CI}pipeline_id`]: '7009' });
    await store.putReferrer(other);
    await store.setReferrersTag(r, plain.digest, sha(`tag2-${nonce}`), [first.digest, second.digest, other.digest]);
    expect((await store.searchImages({ pipeline: '7009' })).items).toEqual([]);
  });

  it('the manifest\'s own build annotations win over a referrer', async () => {
    const r = repo();
    const annotated = image({ [`${CI}commit_sha`]: hex(41), [`${CI}pipeline_id`]: '7100' });
    await store.putManifest(annotated);
    await store.setTag(r, 'v1', annotated.digest, t(1));
    const ref = referrer(annotated.digest, { [`${CI}pipeline_id`]: '7101', [`${CI}commit_sha`]: hex(42) });
    await store.putReferrer(ref);
    await store.setReferrersTag(r, annotated.digest, sha(`tag-${nonce}`), [ref.digest]);
    expect((await store.searchImages({ pipeline: '7101' })).items).toEqual([]);
    expect((await store.searchImages({ commit: hex(42) })).items).toEqual([]);
    const found = (await store.searchImages({ pipeline: '7100' })).items;
    expect(found.map((i) => i.tag)).toEqual(['v1']);
    expect(found[0]!.referrer).toBeUndefined();
    expect(await store.manifestInsight(annotated.digest)).toMatchObject({ buildSource: 'annotations' });
  });

  it('a referrers tag deleted, or a referrer manifest deleted, takes the details away', async () => {
    const r = repo();
    const plain = image({});
    await store.putManifest(plain);
    await store.setTag(r, 'v1', plain.digest, t(1));
    const ref = referrer(plain.digest, { [`${CI}pipeline_id`]: '7200' });
    await store.putReferrer(ref);
    await store.setReferrersTag(r, plain.digest, sha(`tag-${nonce}`), [ref.digest]);
    expect((await store.searchImages({ pipeline: '7200' })).items).toHaveLength(1);

    await store.setReferrersTag(r, plain.digest, null, []);
    expect((await store.searchImages({ pipeline: '7200' })).items).toEqual([]);
    expect(await store.manifestInsight(plain.digest)).toMatchObject({ buildSource: 'none' });
    expect(await store.referrersTagDigest(r, plain.digest)).toBeNull();
    expect((await store.listRepositories({ q: r })).items[0]).toMatchObject({ buildTagCount: 0 });

    await store.setReferrersTag(r, plain.digest, sha(`tag-again-${nonce}`), [ref.digest]);
    expect((await store.searchImages({ pipeline: '7200' })).items).toHaveLength(1);
    await store.removeReferrer(r, ref.digest);
    expect((await store.searchImages({ pipeline: '7200' })).items).toEqual([]);
    expect((await store.getImage(plain.digest))!.referrers).toEqual([]);
    // Linked nowhere: forgotten, so a referrers tag still listing it reads it again.
    expect(await store.hasReferrer(ref.digest)).toBe(false);
  });

  it('converges when the referrer arrives before the subject\'s manifest and tag', async () => {
    const r = repo();
    const plain = image({});
    const ref = referrer(plain.digest, { [`${CI}pipeline_id`]: '7300', [`${CI}commit_ref_name`]: 'feature/early' });
    await store.putReferrer(ref);
    await store.setReferrersTag(r, plain.digest, sha(`tag-${nonce}`), [ref.digest]);
    expect((await store.searchImages({ pipeline: '7300' })).items).toEqual([]);
    // The tag before its manifest, then the manifest.
    await store.setTag(r, 'early', plain.digest, t(1));
    await store.putManifest(plain);
    const found = (await store.searchImages({ ref: 'feature/early' })).items;
    expect(found.map((i) => [i.tag, i.referrer?.digest])).toEqual([['early', ref.digest]]);
    expect(await store.manifestInsight(plain.digest)).toMatchObject({ buildSource: 'referrer' });
    // A second tag on the same digest later gets the same terms.
    await store.setTag(r, 'later', plain.digest, t(2));
    expect((await store.searchImages({ pipeline: '7300' })).items.map((i) => i.tag)).toEqual(['later', 'early']);
  });

  it('reads several manifests at once, each as getImage reads it', async () => {
    const r = repo();
    const other = repo('other');
    const labelled = image({ 'com.example.other': 'x' }, { config: sha(`batch-config-${++nonce}`) });
    await store.putConfigLabels(labelled.configDigest!, { maintainer: 'someone' });
    const unread = image({});
    const emptyLabels = image({}, { config: sha(`batch-empty-${++nonce}`) });
    await store.putConfigLabels(emptyLabels.configDigest!, {});
    const amd = image({ [`${CI}commit_sha`]: hex(60) });
    const idx = index([{ record: amd, platform: { os: 'linux', architecture: 'amd64' } }, { record: labelled, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }], { [`${OCI}title`]: 'batch' });
    for (const m of [labelled, unread, emptyLabels, idx]) await store.putManifest(m);
    await store.setTag(r, 'b', labelled.digest, t(2));
    await store.setTag(r, 'a', labelled.digest, t(3));
    await store.setTag(other, 'z', labelled.digest, t(4));
    await store.setTag(r, 'idx', idx.digest, t(5));
    await store.setTag(r, 'gone', unread.digest, t(6));
    await store.deleteTag(r, 'gone', t(7));
    // A referrer listed in `other` only: it counts there, and (without a repository) since `other` tags the digest.
    const ref = referrer(labelled.digest, { [`${CI}pipeline_id`]: '7400', [`${OCI}created`]: '2026-01-03T10:00:00Z' });
    await store.putReferrer(ref);
    await store.setReferrersTag(other, labelled.digest, sha(`batch-tag-${nonce}`), [ref.digest]);

    const missing = sha(`batch-missing-${nonce}`);
    const digests = [labelled.digest, unread.digest, emptyLabels.digest, idx.digest, amd.digest, missing, labelled.digest];
    for (const options of [{}, { repository: r }, { repository: other }, { repository: repo('never') }]) {
      const batch = await store.getImages(digests, options);
      expect([...batch.keys()].sort(), JSON.stringify(options)).toEqual([labelled.digest, unread.digest, emptyLabels.digest, idx.digest, amd.digest].sort());
      for (const d of batch.keys()) expect(batch.get(d), `${d} ${JSON.stringify(options)}`).toEqual(await store.getImage(d, options));
    }
    const all = await store.getImages(digests);
    expect(all.get(labelled.digest)!.labels).toEqual({ maintainer: 'someone' });
    expect(all.get(emptyLabels.digest)!.labels).toEqual({});
    expect(all.get(unread.digest)!.labels).toBeNull();
    expect(all.get(labelled.digest)!.tags.map((x) => `${x.repository}:${x.tag}`)).toEqual([`${r}:a`, `${r}:b`, `${other}:z`]);
    expect(all.get(labelled.digest)!.parents).toEqual([idx.digest]);
    expect(all.get(labelled.digest)!.referrers?.map((x) => x.digest)).toEqual([ref.digest]);
    expect((await store.getImages([labelled.digest], { repository: r })).get(labelled.digest)!.referrers).toEqual([]);
    expect(all.get(idx.digest)!.children.map((c) => c.digest)).toEqual([amd.digest, labelled.digest]);
    expect(await store.getImages([])).toEqual(new Map());
    await expect(store.getImages([labelled.digest, 'sha256:nope'])).rejects.toBeInstanceOf(InvalidInputError);
  });
});
