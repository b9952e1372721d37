// The store contract, the webhook's part: lookupManifest (stored, or recorded as unreadable, in one
// call) and pushTag (a new manifest and its tag in one transaction), on SQLite and PostgreSQL
// alike. What pushTag writes is read back with SQL and compared with what putManifest then
// setTag write for the same kind of push.
import { beforeAll, describe, expect, it } from 'vitest';
import { DigestMismatchError, InvalidInputError, UsageError } from '../../src/errors.js';
import type { Store, TagPush } from '../../src/catalog/store.js';
import type { SqlStore } from '../../src/catalog/sql/store.js';
import { insightsWindow } from '../../src/catalog/sql/insights.js';
import { recountInsightEvidence } from '../../src/catalog/sql/verifications.js';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { BACKENDS, type Catalog, useBackend } from './backends.js';
import { CI, hex, image, index, sha, t } from './contract/fixtures.js';

const PUSHED_BY = { userAgent: 'buildkit/v0.20.1', pusher: 'buildkit' };

function annotated(n: number): ManifestRecord {
  return image({ [`${CI}pipeline_id`]: String(9000 + n), [`${CI}commit_sha`]: hex(900 + n), [`${CI}job_id`]: String(n) });
}

/** Every row a push leaves for one repository and tag, with ids replaced by what they stand for. */
async function pushRows(catalog: Catalog, repository: string, tag: string, digest: string): Promise<Record<string, unknown>> {
  // PostgreSQL answers its bigint columns as text.
  const numeric = new Set(['size', 'updated_at', 'at', 'live_tags', 'build_tags']);
  const one = async (query: string): Promise<Record<string, unknown>[]> =>
    (await catalog.sql(query)).map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, numeric.has(k) && v !== null ? Number(v) : v])));
  const repo = `(SELECT id FROM repositories WHERE name = '${repository}')`;
  const tagId = `(SELECT id FROM tags WHERE repository_id = ${repo} AND name = '${tag}')`;
  return {
    manifest: await one(`SELECT media_type, size, config_digest, has_build FROM manifests WHERE digest = '${digest}'`),
    annotations: await one(`SELECT a.key, a.value FROM annotations a JOIN manifests m ON m.id = a.manifest_id WHERE m.digest = '${digest}' ORDER BY a.key`),
    tag: await one(`SELECT digest, deleted_at, updated_at, last_kind, last_digest, has_build FROM tags WHERE id = ${tagId}`),
    events: await one(`SELECT at, kind, digest FROM tag_events WHERE tag_id = ${tagId} ORDER BY at`),
    terms: (await one(`SELECT key, value FROM tag_terms WHERE tag_id = ${tagId} ORDER BY key, value`)).map((r) => `${String(r.key)}=${String(r.value)}`),
    repository: await one(`SELECT live_tags, build_tags, updated_at FROM repositories WHERE id = ${repo}`),
    pusher: await one(`SELECT user_agent, pusher FROM manifest_pushers WHERE digest = '${digest}'`),
  };
}

describe.each(BACKENDS)('catalog store contract, tag pushes: %s', (name) => {
  const backend = useBackend(name);
  let catalog: Catalog;
  let store: Store;
  let n = 0;
  const repo = (): string => `push${++n}/app`;
  beforeAll(async () => {
    catalog = await backend().fresh();
    store = catalog.store;
  });

  it('looks a manifest up in one call: stored, new, or recorded as unreadable with its reason', async () => {
    const rec = annotated(1);
    expect(await store.lookupManifest(rec.digest)).toEqual({ stored: false });
    const broken = sha('a schema 1 manifest');
    await store.markUnreadable(broken, 'UNREADABLE_MANIFEST', 'Docker schema 1 is not supported', t(1));
    expect(await store.lookupManifest(broken)).toEqual({ stored: false, unreadable: { code: 'UNREADABLE_MANIFEST', reason: 'Docker schema 1 is not supported' } });
    await store.putManifest(rec);
    expect(await store.lookupManifest(rec.digest)).toEqual({ stored: true });
    await expect(store.lookupManifest("sha256:' OR 1=1 --")).rejects.toThrow(/digest/);
  });

  it('writes a new manifest with its tag and pusher: the same rows as putManifest then setTag', async () => {
    const [a, b] = [repo(), repo()];
    const viaPush = annotated(2);
    const viaTwo = annotated(3);
    expect(await store.pushTag({ repository: a, tag: 'v1', digest: viaPush.digest, at: t(10), manifest: viaPush, pushedBy: PUSHED_BY })).toEqual({ outcome: 'applied', inserted: true });
    await store.putManifest(viaTwo);
    await store.setTag(b, 'v1', viaTwo.digest, t(10), PUSHED_BY);

    const pushed = await pushRows(catalog, a, 'v1', viaPush.digest);
    const two = await pushRows(catalog, b, 'v1', viaTwo.digest);
    // The same rows, each naming its own manifest (the sizes of the two differ by a digit).
    const generic = (rows: Record<string, unknown>, rec: ManifestRecord): string =>
      [rec.digest, rec.configDigest as string, ...Object.values(rec.annotations ?? {})].reduce(
        (text, own) => text.replaceAll(`"${own}"`, '"OWN"').replaceAll(`=${own}"`, '=OWN"'),
        JSON.stringify({ ...rows, manifest: (rows.manifest as Record<string, unknown>[]).map(({ size: _size, ...rest }) => rest) }),
      );
    expect(generic(pushed, viaPush)).toBe(generic(two, viaTwo));
    expect(pushed.manifest).toEqual([expect.objectContaining({ media_type: viaPush.mediaType, size: viaPush.raw.byteLength, config_digest: viaPush.configDigest })]);
    expect(pushed.annotations).toHaveLength(3);
    expect(pushed.tag).toEqual([expect.objectContaining({ digest: viaPush.digest, deleted_at: null })]);
    expect(pushed.events).toEqual([expect.objectContaining({ digest: viaPush.digest })]);
    expect(pushed.terms).toEqual(expect.arrayContaining([expect.stringContaining('9002')]));
    expect(pushed.repository).toEqual([expect.objectContaining({ live_tags: 1, build_tags: 1 })]);
    expect(pushed.pusher).toEqual([{ user_agent: PUSHED_BY.userAgent, pusher: 'buildkit' }]);
    // Found by search at once, as any tag.
    expect((await store.searchImages({ pipeline: '9002' })).items.map((i) => [i.repository, i.tag])).toEqual([[a, 'v1']]);
  });

  it('keeps the outcomes of tag events: a duplicate, an older event (superseded), a tag alone', async () => {
    const r = repo();
    const first = annotated(4);
    const second = annotated(5);
    expect(await store.pushTag({ repository: r, tag: 'v1', digest: first.digest, at: t(20), manifest: first })).toEqual({ outcome: 'applied', inserted: true });
    expect(await store.pushTag({ repository: r, tag: 'v1', digest: first.digest, at: t(20), manifest: first })).toEqual({ outcome: 'duplicate', inserted: false });
    // Dated before the tag's newest event: the manifest is stored, the tag stays.
    expect(await store.pushTag({ repository: r, tag: 'v1', digest: second.digest, at: t(10), manifest: second })).toEqual({ outcome: 'superseded', inserted: true });
    expect((await catalog.sql(`SELECT digest FROM tags WHERE name = 'v1' AND repository_id = (SELECT id FROM repositories WHERE name = '${r}')`)).map((x) => x.digest)).toEqual([first.digest]);
    expect((await catalog.sql(`SELECT count(*) AS n FROM manifests WHERE digest = '${second.digest}'`))[0]!.n).toEqual(name === 'sqlite' ? 1 : '1');
    // Without a manifest: setTag.
    expect(await store.pushTag({ repository: r, tag: 'v2', digest: second.digest, at: t(30) })).toEqual({ outcome: 'applied', inserted: false });
    expect((await store.listTags(r, {})).items.map((i) => [i.tag, i.digest])).toEqual([
      ['v2', second.digest],
      ['v1', first.digest],
    ]);
  });

  it('writes nothing when the manifest fails its checks', async () => {
    const r = repo();
    const rec = annotated(6);
    await expect(store.pushTag({ repository: r, tag: 'v1', digest: rec.digest, at: t(1), manifest: { ...rec, raw: Buffer.from('other bytes') } })).rejects.toBeInstanceOf(DigestMismatchError);
    const other = annotated(7);
    await expect(store.pushTag({ repository: r, tag: 'v1', digest: rec.digest, at: t(1), manifest: other })).rejects.toBeInstanceOf(UsageError);
    const rows = await catalog.sql(
      `SELECT (SELECT count(*) FROM manifests WHERE digest IN ('${rec.digest}', '${other.digest}')) AS manifests, (SELECT count(*) FROM repositories WHERE name = '${r}') AS repositories`,
    );
    expect(rows.map((x) => [Number(x.manifests), Number(x.repositories)])).toEqual([[0, 0]]);
  });

  it('writes an index with new and already stored platform manifests, with its tag', async () => {
    const r = repo();
    const amd = annotated(8);
    const arm = annotated(9);
    // One platform manifest is in the catalog already (another index lists it, or a sync read it).
    await store.putManifest(amd);
    const idx = index([
      { record: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { record: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    expect(await store.pushTag({ repository: r, tag: 'multi', digest: idx.digest, at: t(1), manifest: idx, pushedBy: PUSHED_BY })).toEqual({ outcome: 'applied', inserted: true });
    const children = await catalog.sql(
      `SELECT c.child_digest, c.architecture FROM manifest_children c JOIN manifests m ON m.id = c.parent_id WHERE m.digest = '${idx.digest}' ORDER BY c.position`,
    );
    expect(children.map((c) => [c.child_digest, c.architecture])).toEqual([
      [amd.digest, 'amd64'],
      [arm.digest, 'arm64'],
    ]);
    expect((await catalog.sql(`SELECT count(*) AS n FROM manifests WHERE digest = '${arm.digest}'`)).map((x) => Number(x.n))).toEqual([1]);
    const item = (await store.listTags(r, {})).items[0];
    expect(item?.digest).toBe(idx.digest);
    expect(item?.hasBuildDetails).toBe(true);
  });

  it('writes an index listing a stored platform manifest by digest only, as ingest sends it (beside other writers, it runs again alone)', async () => {
    const r = repo();
    const known = annotated(10);
    const fresh = annotated(11);
    await store.putManifest(known);
    await store.pushTag({ repository: r, tag: 'known', digest: known.digest, at: t(1) });
    const full = index([
      { record: known, platform: { os: 'linux', architecture: 'amd64' } },
      { record: fresh, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    // Ingest does not read a platform manifest the catalog holds: its entry comes without a record.
    const idx: ManifestRecord = { ...full, children: full.children!.map((c) => (c.digest === known.digest ? { digest: c.digest, mediaType: c.mediaType!, size: c.size!, platform: c.platform! } : c)) };
    expect(await store.pushTag({ repository: r, tag: 'multi', digest: idx.digest, at: t(2), manifest: idx })).toEqual({ outcome: 'applied', inserted: true });
    const tags = await catalog.sql(`SELECT name, digest, has_build FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = '${r}') ORDER BY name`);
    expect(tags.map((x) => [x.name, x.digest, Number(x.has_build)])).toEqual([
      ['known', known.digest, 1],
      ['multi', idx.digest, 1],
    ]);
    expect((await store.getImage(idx.digest))?.children.map((c) => c.digest)).toEqual([known.digest, fresh.digest]);
  });

  it('takes pushes of different tags and digests side by side, and of one new digest to two tags, without losing one', async () => {
    const r = repo();
    const records = Array.from({ length: 8 }, (_, k) => annotated(20 + k));
    const shared = annotated(40);
    const results = await Promise.all([
      ...records.map((rec, k) => store.pushTag({ repository: r, tag: `t${k}`, digest: rec.digest, at: t(100 + k), manifest: rec, pushedBy: PUSHED_BY })),
      store.pushTag({ repository: r, tag: 'same-a', digest: shared.digest, at: t(200), manifest: shared }),
      store.pushTag({ repository: r, tag: 'same-b', digest: shared.digest, at: t(200), manifest: shared }),
    ]);
    expect(results.map((x) => x.outcome)).toEqual(results.map(() => 'applied'));
    // The shared digest was inserted by exactly one of its two pushes.
    expect(results.slice(8).map((x) => x.inserted).sort()).toEqual([false, true]);
    const tags = await catalog.sql(`SELECT name, digest FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = '${r}') ORDER BY name`);
    expect(tags.map((x) => [x.name, x.digest])).toEqual([
      ['same-a', shared.digest],
      ['same-b', shared.digest],
      ...records.map((rec, k) => [`t${k}`, rec.digest]),
    ]);
    expect((await catalog.sql(`SELECT live_tags, build_tags FROM repositories WHERE name = '${r}'`)).map((x) => [Number(x.live_tags), Number(x.build_tags)])).toEqual([[10, 10]]);
  });
  // ---- pushTags: the webhook's batches (push-batch.ts)

  /** Every row of these tags of one repository, with the repository's name and its counters generic. */
  async function batchRows(r: string, tags: readonly string[], digests: readonly string[]): Promise<unknown[]> {
    const rows = [];
    for (const [i, tag] of tags.entries()) rows.push(await pushRows(catalog, r, tag, digests[i]!));
    return rows;
  }

  it('pushTags writes what pushTag of each writes, in one call: new manifests with their tags and pushers', async () => {
    const [alone, together] = [repo(), repo()];
    const records = Array.from({ length: 4 }, (_, k) => annotated(60 + k));
    const tags = records.map((_, k) => `b${k}`);
    const each = [];
    for (const [k, rec] of records.entries()) each.push(await store.pushTag({ repository: alone, tag: tags[k]!, digest: rec.digest, at: t(300 + k), manifest: rec, pushedBy: PUSHED_BY }));
    const before = await batchRows(alone, tags, records.map((r) => r.digest));
    // The same pushes again, into another repository, as one batch: the manifests are stored now.
    const again = await store.pushTags(records.map((rec, k) => ({ repository: together, tag: tags[k]!, digest: rec.digest, at: t(300 + k), manifest: rec, pushedBy: PUSHED_BY })));
    expect(each).toEqual(records.map(() => ({ outcome: 'applied', inserted: true })));
    expect(again).toEqual(records.map(() => ({ outcome: 'applied', inserted: false })));
    expect(await batchRows(together, tags, records.map((r) => r.digest))).toEqual(before);

    // New manifests in one batch: as many rows as pushing them one by one would leave.
    const [seq, batch] = [repo(), repo()];
    const fresh = Array.from({ length: 4 }, (_, k) => annotated(70 + k));
    const twins = Array.from({ length: 4 }, (_, k) => annotated(80 + k));
    for (const [k, rec] of fresh.entries()) await store.pushTag({ repository: seq, tag: tags[k]!, digest: rec.digest, at: t(400 + k), manifest: rec, pushedBy: PUSHED_BY });
    expect(await store.pushTags(twins.map((rec, k) => ({ repository: batch, tag: tags[k]!, digest: rec.digest, at: t(400 + k), manifest: rec, pushedBy: PUSHED_BY })))).toEqual(
      twins.map(() => ({ outcome: 'applied', inserted: true })),
    );
    const generic = (rows: unknown[], recs: readonly ManifestRecord[]): string =>
      recs.reduce(
        (text, rec) => [rec.digest, rec.configDigest as string, ...Object.values(rec.annotations ?? {})].reduce((x, own) => x.replaceAll(`"${own}"`, '"OWN"').replaceAll(`=${own}"`, '=OWN"'), text),
        JSON.stringify(rows),
      );
    expect(generic(await batchRows(batch, tags, twins.map((r) => r.digest)), twins)).toBe(generic(await batchRows(seq, tags, fresh.map((r) => r.digest)), fresh));
    expect((await store.searchImages({ pipeline: '9080' })).items.map((i) => [i.repository, i.tag])).toEqual([[batch, 'b0']]);
  });

  it('pushTags keeps each push\'s outcome: a tag twice in one batch, the older one sent later, and one manifest carried twice', async () => {
    const r = repo();
    const newer = annotated(90);
    const older = annotated(91);
    const results = await store.pushTags([
      { repository: r, tag: 'latest', digest: newer.digest, at: t(50), manifest: newer },
      { repository: r, tag: 'latest', digest: older.digest, at: t(40), manifest: older },
      { repository: r, tag: 'again', digest: newer.digest, at: t(50), manifest: newer },
      { repository: r, tag: 'latest', digest: newer.digest, at: t(50) },
    ]);
    expect(results).toEqual([
      { outcome: 'applied', inserted: true },
      { outcome: 'superseded', inserted: true },
      { outcome: 'applied', inserted: false },
      { outcome: 'duplicate', inserted: false },
    ]);
    expect((await store.listTags(r, {})).items.map((i) => [i.tag, i.digest]).sort()).toEqual([
      ['again', newer.digest],
      ['latest', newer.digest],
    ]);
    expect(await store.pushTags([])).toEqual([]);
  });

  it('pushTags of stored manifests (the webhook\'s other lane) writes their tags as pushTag of each', async () => {
    const [alone, together] = [repo(), repo()];
    const rec = annotated(95);
    await store.putManifest(rec);
    const tags = ['k1', 'k2', 'k3'];
    for (const [k, tag] of tags.entries()) await store.pushTag({ repository: alone, tag, digest: rec.digest, at: t(500 + k), pushedBy: PUSHED_BY });
    expect(await store.pushTags(tags.map((tag, k) => ({ repository: together, tag, digest: rec.digest, at: t(500 + k), pushedBy: PUSHED_BY })))).toEqual(
      tags.map(() => ({ outcome: 'applied', inserted: false })),
    );
    const digests = tags.map(() => rec.digest);
    expect(await batchRows(together, tags, digests)).toEqual(await batchRows(alone, tags, digests));
  });

  it('pushTags names the pusher pushTag of each names: the first push of a manifest, also when a later push in the batch carries it', async () => {
    const [alone, together] = [repo(), repo()];
    const [seq, batch] = [annotated(98), annotated(99)];
    const pushes = (r: string, rec: ManifestRecord) => [
      { repository: r, tag: 'early', digest: rec.digest, at: t(600), pushedBy: { userAgent: 'kaniko/1.23', pusher: 'kaniko' } },
      { repository: r, tag: 'carried', digest: rec.digest, at: t(601), manifest: rec, pushedBy: PUSHED_BY },
    ];
    for (const p of pushes(alone, seq)) await store.pushTag(p);
    await store.pushTags(pushes(together, batch));
    const pusher = async (digest: string) => (await catalog.sql(`SELECT pusher FROM manifest_pushers WHERE digest = '${digest}'`)).map((x) => x.pusher);
    expect(await pusher(seq.digest)).toEqual(['kaniko']);
    expect(await pusher(batch.digest)).toEqual(['kaniko']);
  });

  it('pushTags of tags moving between images, older events and pushers leaves what pushTag of each leaves, and aggregates equal to the scan of the tags', async () => {
    const [batched, each] = [catalog, await backend().fresh()];
    const [a, b, c] = [annotated(100), annotated(101), annotated(102)];
    const by = (pusher: string) => ({ userAgent: `${pusher}/1`, pusher });
    const day = (d: number, s = 0): Date => t(d * 86400 + s);
    const batches: TagPush[][] = [
      [
        { repository: 'mix/app', tag: 'x', digest: a.digest, at: day(1), manifest: a, pushedBy: by('kaniko') },
        { repository: 'mix/app', tag: 'y', digest: b.digest, at: day(1, 1), manifest: b, pushedBy: by('buildkit') },
        { repository: 'mix/lib', tag: 'x', digest: a.digest, at: day(2), manifest: a, pushedBy: by('buildah') },
      ],
      [
        { repository: 'mix/app', tag: 'x', digest: b.digest, at: day(9), pushedBy: by('docker') },
        { repository: 'mix/app', tag: 'y', digest: a.digest, at: day(9, 1) },
        { repository: 'mix/app', tag: 'x', digest: a.digest, at: day(8) },
        { repository: 'mix/app', tag: 'z', digest: c.digest, at: day(10), pushedBy: by('podman') },
        { repository: 'mix/app', tag: 'z', digest: b.digest, at: day(17) },
      ],
      [
        { repository: 'mix/app', tag: 'w', digest: c.digest, at: day(20), manifest: c, pushedBy: by('crane') },
        { repository: 'mix/app', tag: 'z', digest: c.digest, at: day(20, 5), manifest: c },
      ],
    ];
    for (const batch of batches) {
      const together = await batched.store.pushTags(batch);
      const alone = [];
      for (const p of batch) alone.push(await each.store.pushTag(p));
      expect(together.map((r) => r.outcome)).toEqual(alone.map((r) => r.outcome));
    }
    const state = (cat: Catalog) =>
      Promise.all([
        cat.sql(`SELECT r.name, g.name AS tag, g.digest, g.updated_at, g.has_build, r.live_tags, r.build_tags FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE r.name LIKE 'mix/%' ORDER BY r.name, g.name`),
        cat.sql(`SELECT digest, pusher FROM manifest_pushers WHERE digest IN ('${a.digest}', '${b.digest}', '${c.digest}') ORDER BY digest`),
      ]).then((rows) => JSON.stringify(rows).replace(/"(\d+)"/g, '$1'));
    expect(await state(batched)).toBe(await state(each));
    for (const cat of [batched, each]) {
      const s = cat.store as SqlStore;
      for (const from of ['2025-12-29', '2026-01-05', '2026-01-12', '2026-01-19']) {
        const query = { from: new Date(`${from}T00:00:00Z`), to: new Date('2026-03-02T00:00:00Z') };
        const window = insightsWindow(query);
        expect(await s.verifiedInsights(query)).toEqual(await recountInsightEvidence(s.driver, window.from, window.to, null));
      }
    }
  });

  it('pushTags answers inserted as pushTag of each: a platform manifest an earlier push of the batch carried in its index was inserted by that push', async () => {
    const [alone, together] = [repo(), repo()];
    const answer = async (write: (pushes: TagPush[]) => Promise<{ inserted: boolean }[]>, r: string, n: number) => {
      const amd = annotated(n);
      const idx = index([{ record: amd, platform: { os: 'linux', architecture: 'amd64' } }]);
      const pushes: TagPush[] = [
        { repository: r, tag: 'multi', digest: idx.digest, at: t(1), manifest: idx },
        { repository: r, tag: 'amd64', digest: amd.digest, at: t(2), manifest: amd },
      ];
      return (await write(pushes)).map((x) => x.inserted);
    };
    const each = await answer(async (pushes) => {
      const out = [];
      for (const p of pushes) out.push(await store.pushTag(p));
      return out;
    }, alone, 110);
    expect(each).toEqual([true, false]);
    expect(await answer((pushes) => store.pushTags(pushes), together, 111)).toEqual(each);
  });

  it('pushTags writes nothing when one push fails its checks', async () => {
    const r = repo();
    const good = annotated(96);
    const bad = annotated(97);
    await expect(
      store.pushTags([
        { repository: r, tag: 'good', digest: good.digest, at: t(1), manifest: good },
        { repository: r, tag: 'bad', digest: bad.digest, at: t(1), manifest: { ...bad, raw: Buffer.from('other bytes') } },
      ]),
    ).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(store.pushTags([{ repository: r, tag: 'good', digest: good.digest, at: t(1), manifest: good }, { repository: r, tag: 'broken', digest: 'sha256:not-hex', at: t(1) }])).rejects.toBeInstanceOf(InvalidInputError);
    const rows = await catalog.sql(`SELECT (SELECT count(*) FROM manifests WHERE digest IN ('${good.digest}', '${bad.digest}')) AS manifests, (SELECT count(*) FROM repositories WHERE name = '${r}') AS repositories`);
    expect(rows.map((x) => [Number(x.manifests), Number(x.repositories)])).toEqual([[0, 0]]);
  });
});
