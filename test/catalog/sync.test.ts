// The crawler against a real registry (distribution 2.8 behind the counting proxy), on both
// catalog backends. Each backend gets its own repositories (PREFIX/...), so they share one registry.
import { beforeAll, describe, expect, it } from 'vitest';
import { checkpointKey, sync } from '../../src/catalog/sync.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { useRegistry } from '../helpers/fixtures.js';
import { makeTempDir } from '../helpers/cleanup.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { BACKENDS, useBackend } from './backends.js';
import { type Seeded, ciAnnotations, hex, seedRegistry } from './seed.js';

function client(fetchImpl: typeof fetch = globalThis.fetch): RegistryClient {
  return new RegistryClient({ fetch: fetchImpl, credentials: () => undefined, retry: { maxAttempts: 2, baseDelayMs: 10 } });
}

const registry = useRegistry({ deleteEnabled: true });

describe.each(BACKENDS)('sync into %s', (backendName) => {
  const backend = useBackend(backendName);
  const prefix = `sync-${backendName}`;
  let seeded: Seeded;

  beforeAll(async () => {
    seeded = await seedRegistry(registry().host, prefix);
  });

  it('reads a registry that already holds images: single, index with children, labels only', async () => {
    const { store } = await backend().fresh();
    registry().resetRequests();
    const summary = await sync({ client: client(), store, registry: registry().host, prefix });

    expect(summary).toMatchObject({ complete: true, repositories: 4, tags: 4, added: 4, deleted: 0, errorCount: 0, resumedAfter: null });
    // One GET per manifest: app, the index and its two platform manifests (not the attestations),
    // labels, plain. Config blobs only for the two images without build annotations.
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(6);
    expect(registry().count({ method: 'HEAD', kind: 'manifest' })).toBe(4);
    expect(registry().count({ method: 'GET', kind: 'blob' })).toBe(2);
    expect(summary).toMatchObject({ manifestsFetched: 6, configsFetched: 2, manifestsStored: 6 });

    const byCommit = await store.searchImages({ commit: seeded.app.commit.slice(0, 7) });
    expect(byCommit.items.map((i) => `${i.repository}:${i.tag}`)).toEqual([`${seeded.app.repository}:v1`]);
    expect(byCommit.items[0]?.digest).toBe(seeded.app.digest);

    const byPipeline = await store.searchImages({ pipeline: seeded.multi.pipeline });
    expect(byPipeline.items).toHaveLength(1);
    const multi = byPipeline.items[0]!;
    expect(multi).toMatchObject({ repository: seeded.multi.repository, tag: 'v2', digest: seeded.multi.digest, mediaType: 'application/vnd.oci.image.index.v1+json' });
    expect(multi.platforms.filter((p) => p.os !== 'unknown')).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);

    const detail = await store.getImage(seeded.multi.digest);
    expect(detail?.children.map((c) => c.digest)).toEqual([...seeded.multi.children, ...seeded.multi.attestations]);
    expect(detail?.children.slice(0, 2).every((c) => c.annotations !== null)).toBe(true);
    expect(detail?.children.slice(2).every((c) => c.annotations === null)).toBe(true);

    // The labels-only image answers to its label, through the fallback.
    const byRevision = await store.searchImages({ commit: seeded.labels.revision.slice(0, 10) });
    expect(byRevision.items.map((i) => i.digest)).toEqual([seeded.labels.digest]);
    expect(byRevision.items[0]).toMatchObject({ hasBuildDetails: true, labelAnnotations: { 'org.opencontainers.image.revision': seeded.labels.revision } });
    const labels = await store.getImage(seeded.labels.digest);
    expect(labels?.labels).toMatchObject({ maintainer: 'someone' });

    const plain = await store.searchImages({ repository: seeded.plain.repository });
    expect(plain.items).toHaveLength(1);
    expect(plain.items[0]?.hasBuildDetails).toBe(false);
  });

  it('reads no manifest body and no blob on a second sync of an unchanged registry', async () => {
    const { store } = await backend().fresh();
    await sync({ client: client(), store, registry: registry().host, prefix });
    registry().resetRequests();
    const second = await sync({ client: client(), store, registry: registry().host, prefix });
    expect(second).toMatchObject({ complete: true, tags: 4, unchanged: 4, added: 0, updated: 0, deleted: 0, manifestsFetched: 0, configsFetched: 0 });
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(0);
    expect(registry().count({ method: 'GET', kind: 'blob' })).toBe(0);
    expect(registry().count({ method: 'HEAD', kind: 'manifest' })).toBe(4);
  });

  it('resumes after an interruption, from the checkpoint of the last repository done', async () => {
    const { store } = await backend().fresh();
    const controller = new AbortController();
    const first = await sync({
      client: client(),
      store,
      registry: registry().host,
      prefix,
      concurrency: 1,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.repositoriesDone >= 1) controller.abort();
      },
    });
    expect(first.complete).toBe(false);
    expect(first.repositories).toBe(1);
    const checkpoint = await store.getCheckpoint<{ last: string }>(checkpointKey(registry().host, prefix));
    expect(checkpoint?.last).toBe(`${prefix}/app`);

    registry().resetRequests();
    const second = await sync({ client: client(), store, registry: registry().host, prefix });
    expect(second).toMatchObject({ complete: true, resumedAfter: `${prefix}/app`, repositories: 3, added: 3 });
    // The repository done before the interruption is not read again.
    expect(registry().count({ kind: 'tags', repository: `${prefix}/app` })).toBe(0);
    expect(await store.getCheckpoint(checkpointKey(registry().host, prefix))).toBeUndefined();
    expect((await store.searchImages({ repository: `${prefix}/app` })).items).toHaveLength(1);

    // --restart ignores a checkpoint.
    await store.setCheckpoint(checkpointKey(registry().host, prefix), { last: `${prefix}/plain`, startedAt: 0 });
    const restarted = await sync({ client: client(), store, registry: registry().host, prefix, resume: false });
    expect(restarted).toMatchObject({ complete: true, resumedAfter: null, repositories: 4, unchanged: 4 });
  });

  it('keeps at most `concurrency` registry requests in flight', async () => {
    const { store } = await backend().fresh();
    let inFlight = 0;
    let most = 0;
    const counting: typeof fetch = async (input, init) => {
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        const res = await fetch(input, init);
        // Read the body inside the count: the request is in flight until then.
        const body = await res.arrayBuffer();
        return new Response(init?.method === 'HEAD' ? null : body, { status: res.status, statusText: res.statusText, headers: res.headers });
      } finally {
        inFlight--;
      }
    };
    const summary = await sync({ client: client(counting), store, registry: registry().host, prefix, concurrency: 2 });
    expect(summary.complete).toBe(true);
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2);
  });

  it('follows a moved tag and a deleted manifest; the deleted tag leaves search and keeps its history', async () => {
    const { store } = await backend().fresh();
    const repoPrefix = `${prefix}-moves`;
    const mine = await seedRegistry(registry().host, repoPrefix);
    await sync({ client: client(), store, registry: registry().host, prefix: repoPrefix });

    const dir = await makeTempDir('moved');
    const commit = hex(20);
    const moved = await pushImage(await makeImage(dir, { manifestAnnotations: ciAnnotations(commit, '42', 'main'), tag: 'v1' }), `${registry().host}/${mine.app.repository}:v1`);
    const del = await fetch(`${registry().url}/v2/${mine.plain.repository}/manifests/${mine.plain.digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);

    registry().resetRequests();
    const summary = await sync({ client: client(), store, registry: registry().host, prefix: repoPrefix });
    expect(summary).toMatchObject({ complete: true, updated: 1, deleted: 1, unchanged: 2, manifestsFetched: 1, configsFetched: 0 });
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(1);

    expect((await store.searchImages({ repository: mine.app.repository })).items.map((i) => i.digest)).toEqual([moved]);
    expect((await store.searchImages({ commit: mine.app.commit })).items).toEqual([]);
    expect((await store.searchImages({ repository: mine.plain.repository })).items).toEqual([]);
    const history = await store.tagHistory(mine.plain.repository, 'latest');
    expect(history).toMatchObject({ digest: null, entries: [{ digest: mine.plain.digest, end: 'deleted' }] });
    expect(history?.deletedAt).toBeInstanceOf(Date);
    const appHistory = await store.tagHistory(mine.app.repository, 'v1');
    expect(appHistory?.entries.map((e) => [e.digest, e.end])).toEqual([
      [moved, null],
      [mine.app.digest, 'replaced'],
    ]);
  });

  it('syncs only the repositories under --repository, by whole path components', async () => {
    const { store } = await backend().fresh();
    const summary = await sync({ client: client(), store, registry: registry().host, prefix: `${prefix}/app` });
    expect(summary).toMatchObject({ complete: true, repositories: 1, added: 1 });
    const all = await store.listRepositories({});
    expect(all.items.map((r) => r.name)).toEqual([`${prefix}/app`]);
  });
});
