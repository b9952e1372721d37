// The store contract, insights part: what the catalog derives about how images were built
// (docs/insights.md), on SQLite and PostgreSQL alike.
import { beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { Store } from '../../src/catalog/store.js';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { BACKENDS, type Backend, CI, OCI, hex, image, rawSql, sha, t, unique, useContractStore } from './contract/fixtures.js';
describe.each(BACKENDS)('catalog store contract, insights: $name', ({ start }) => {
  const contract = useContractStore(start);
  let store: Store;
  let backend: Backend;
  beforeAll(() => {
    ({ store, backend } = contract);
  });
  const { open } = contract;

  const week = 7 * 86400;
  const ATTESTATION = { 'vnd.docker.reference.type': 'attestation-manifest' };

  /** A buildx-style index: two platforms and an attestation manifest per platform. */
  function buildxIndex(): ManifestRecord {
    const amd = image();
    const arm = image();
    const att = image({}, {});
    const doc = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.raw.byteLength, platform: { architecture: 'amd64', os: 'linux' } },
        { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.raw.byteLength, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
        { mediaType: OCI_MANIFEST, digest: att.digest, size: att.raw.byteLength, annotations: { ...ATTESTATION, 'vnd.docker.reference.digest': amd.digest }, platform: { architecture: 'unknown', os: 'unknown' } },
      ],
    };
    const raw = Buffer.from(JSON.stringify(doc));
    return {
      digest: sha256Digest(raw),
      mediaType: OCI_INDEX,
      raw,
      children: [
        { digest: amd.digest, mediaType: OCI_MANIFEST, platform: { os: 'linux', architecture: 'amd64' }, manifest: amd },
        { digest: arm.digest, mediaType: OCI_MANIFEST, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, manifest: arm },
        { digest: att.digest, mediaType: OCI_MANIFEST, platform: { os: 'unknown', architecture: 'unknown' } },
      ],
    };
  }

  const kanikoConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/app'] },
    history: [{ created: '2026-01-01T00:00:00Z', author: 'kaniko', created_by: 'COPY app /app', comment: '' }],
    rootfs: { type: 'layers', diff_ids: [] },
  };

  it('derives builder, build-details source, media family and platforms per manifest', async () => {
    const idx = buildxIndex();
    await store.putManifest(idx);
    expect(await store.manifestInsight(idx.digest)).toEqual({
      builder: 'buildkit',
      confidence: 'high',
      evidence: ['manifests[2] is an attestation manifest (vnd.docker.reference.type=attestation-manifest)'],
      buildSource: 'none',
      mediaFamily: 'oci',
      platformCount: 2,
    });
    // Labels only: buildah's label names the builder, the revision label makes labels the source.
    const buildah = image({}, { labels: { 'io.buildah.version': '1.28.2', [`${OCI}revision`]: hex(1) } });
    await store.putManifest(buildah);
    expect(await store.manifestInsight(buildah.digest)).toMatchObject({ builder: 'buildah', buildSource: 'labels', platformCount: 1 });
    // Annotated, config never read: honest "unread".
    const annotated = image({ [`${CI}pipeline_id`]: '77' });
    await store.putManifest(annotated);
    expect(await store.manifestInsight(annotated.digest)).toMatchObject({ builder: 'unread', confidence: 'none', buildSource: 'annotations' });
    // The whole config, read for builder evidence.
    const kaniko = { ...image(), config: kanikoConfig };
    await store.putManifest(kaniko);
    expect(await store.manifestInsight(kaniko.digest)).toMatchObject({ builder: 'kaniko', evidence: ['history[0].author=kaniko'] });
    // A later manifest with the same config (an annotated copy) learns it from the stored config.
    const copy = image({ [`${CI}pipeline_id`]: '78' }, { config: kaniko.configDigest! });
    await store.putManifest(copy);
    expect(await store.manifestInsight(copy.digest)).toMatchObject({ builder: 'kaniko', buildSource: 'annotations' });
    // Labels recorded after the manifest: the manifest is derived again.
    const late = image();
    await store.putManifest(late);
    expect(await store.manifestInsight(late.digest)).toMatchObject({ builder: 'unread' });
    await store.putConfigLabels(late.configDigest!, { 'io.buildah.version': '1.33.7' });
    expect(await store.manifestInsight(late.digest)).toMatchObject({ builder: 'buildah', evidence: ['config label io.buildah.version=1.33.7'] });
    expect(await store.manifestInsight(sha('never stored'))).toBeNull();
  });

  it('counts images by week, overall, per namespace and per repository', async () => {
    const ns1 = `ins${unique()}`;
    const ns2 = `ins${unique()}`;
    const idx = buildxIndex();
    const buildah = image({}, { labels: { 'io.buildah.version': '1.28.2', [`${OCI}source`]: 'https://gitlab.example.com/g/p' } });
    const dockerDoc = { schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha('docker-config'), size: 2 }, layers: [], nonce: unique() };
    const dockerRaw = Buffer.from(JSON.stringify(dockerDoc));
    const docker: ManifestRecord = { digest: sha256Digest(dockerRaw), mediaType: dockerDoc.mediaType, raw: dockerRaw, configDigest: sha('docker-config'), annotations: { [`${CI}pipeline_id`]: '1' } };
    for (const r of [idx, buildah, docker]) await store.putManifest(r);
    // Week 0 (the week of 2026-01-01): the index in ns1/app. Week 1: buildah in ns1/lib, the
    // index again under another tag and repository ns1/app2, docker in ns2/svc. A tag moving back
    // to an image it already pointed at does not count it twice.
    await store.setTag(`${ns1}/app`, 'v1', idx.digest, t(0));
    await store.setTag(`${ns1}/app`, 'latest', idx.digest, t(week + 10));
    await store.setTag(`${ns1}/lib`, 'v1', buildah.digest, t(week));
    await store.setTag(`${ns1}/app2`, 'v1', idx.digest, t(week + 20));
    await store.setTag(`${ns2}/svc`, 'v1', docker.digest, t(week + 30));
    await store.setTag(`${ns2}/svc`, 'v1', buildah.digest, t(week + 40));
    await store.setTag(`${ns2}/svc`, 'v1', docker.digest, t(week + 50));

    const from = t(0);
    const to = t(week + 60);
    const all = await store.insights({ from, to });
    const mine = (g: { name: string }) => g.name === ns1 || g.name === ns2;
    const groups = all.groups.filter(mine);
    expect(all.groupBy).toBe('namespace');
    expect(all.weeks.map((w) => w.start.toISOString())).toEqual(['2025-12-29T00:00:00.000Z', '2026-01-05T00:00:00.000Z']);
    expect(groups.map((g) => g.name)).toEqual([ns1, ns2]);
    const g1 = groups[0]!;
    expect(g1.totals).toMatchObject({ images: 3, multiPlatform: 2, builders: { buildkit: 2, buildah: 1 }, buildSources: { none: 2, labels: 1 }, mediaTypes: { oci: 3 } });
    expect(g1.weeks.map((w) => w.counts.images)).toEqual([1, 2]);
    const g2 = groups[1]!;
    expect(g2.totals).toMatchObject({ images: 2, multiPlatform: 0, builders: { unread: 1, buildah: 1 }, buildSources: { annotations: 1, labels: 1 }, mediaTypes: { docker: 1, oci: 1 } });
    expect(g2.weeks.map((w) => w.counts.images)).toEqual([0, 2]);

    const byRepo = await store.insights({ namespace: ns1, from, to });
    expect(byRepo.groupBy).toBe('repository');
    expect(byRepo.namespace).toBe(ns1);
    expect(byRepo.groups.map((g) => [g.name, g.totals.images])).toEqual([
      [`${ns1}/app`, 1],
      [`${ns1}/app2`, 1],
      [`${ns1}/lib`, 1],
    ]);
    expect(byRepo.totals.images).toBe(3);
    expect(byRepo.platforms).toEqual([
      { platform: 'linux/amd64', images: 2 },
      { platform: 'linux/arm64/v8', images: 2 },
    ]);
    const one = await store.insights({ repository: `${ns2}/svc`, from, to });
    expect(one.totals).toMatchObject({ images: 2, builders: { unread: 1, buildah: 1 } });
    expect(one.groups.map((g) => g.name)).toEqual([`${ns2}/svc`]);
    // A namespace is matched by whole path segments.
    expect((await store.insights({ namespace: `${ns1.slice(0, -1)}`, from, to })).groups.filter(mine)).toEqual([]);
    // A window after everything counts nothing.
    expect((await store.insights({ namespace: ns1, from: t(week * 3), to: t(week * 4) })).totals.images).toBe(0);
  });

  it('refuses bad windows and namespaces with a usage error', async () => {
    await expect(store.insights({ from: t(week), to: t(0) })).rejects.toBeInstanceOf(UsageError);
    await expect(store.insights({ from: t(0), to: t(week * 600) })).rejects.toBeInstanceOf(UsageError);
    await expect(store.insights({ namespace: 'a/b' })).rejects.toBeInstanceOf(UsageError);
  });

  it('backfills the derived columns of manifests stored before they existed', async () => {
    const url = await backend.fresh();
    const s1 = await open(url);
    const idx = buildxIndex();
    const buildah = image({}, { labels: { 'io.buildah.version': '1.28.2' } });
    await s1.putManifest(idx);
    await s1.putManifest(buildah);
    await s1.close();
    // As a version-1 catalog would have them: nothing derived.
    await rawSql(url, 'UPDATE manifests SET builder = NULL, builder_confidence = NULL, builder_evidence = NULL, build_source = NULL, media_family = NULL, platform_count = NULL');
    const s2 = await open(url);
    expect(await s2.manifestInsight(idx.digest)).toMatchObject({ builder: 'buildkit', platformCount: 2, mediaFamily: 'oci' });
    expect(await s2.manifestInsight(buildah.digest)).toMatchObject({ builder: 'buildah', buildSource: 'none' });
  });
});
