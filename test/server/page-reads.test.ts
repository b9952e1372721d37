// Pages read the store a fixed number of times, whatever the number of rows they show: counted
// through a StoreReader that wraps a real SQLite catalog. A tag page lists the build details of a
// tag's earlier digests and an index's platform manifests; the image API reads the children's
// labels for an index without build annotations. Each is measured with 2 rows and with 20.
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store, StoreReader } from '../../src/catalog/store.js';
import { openStore } from '../../src/catalog/open.js';
import { createApp } from '../../src/server/app.js';
import { mountUi } from '../../src/server/ui/index.js';
import { makeTempDir, removeTempDir } from '../helpers/cleanup.js';
import { imageRecord, indexRecord } from '../helpers/records.js';

const NOW = new Date('2026-11-26T12:00:00Z');

let dir: string;
let store: Store;
const reads: string[] = [];

/** The store, with every StoreReader call recorded by name. */
function counted(target: Store): Store {
  const readerMethods = new Set<keyof StoreReader>(['listRepositories', 'listTags', 'searchImages', 'getImage', 'getImages', 'tagHistory', 'stats', 'insights', 'manifestInsight']);
  return new Proxy(target, {
    get(t, name, receiver) {
      const value = Reflect.get(t, name, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (readerMethods.has(name as keyof StoreReader)) reads.push(String(name));
        return (value as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
}

const platforms = (n: number) => Array.from({ length: n }, (_, i) => ({ os: 'linux', architecture: `arch${i}` }));

/** A tag that pointed at `n` digests, the last of them an index of `n` platform manifests. */
async function seedTag(repository: string, n: number): Promise<void> {
  for (let i = 0; i < n - 1; i++) {
    const rec = imageRecord({ annotations: { 'com.gitlab.ci.pipeline_id': String(1000 + i) } });
    await store.putManifest(rec);
    await store.setTag(repository, 'moving', rec.digest, new Date(NOW.getTime() - (100 - i) * 60_000));
  }
  const idx = indexRecord({ platforms: platforms(n), childAnnotations: { 'com.example.note': 'child' } });
  await store.putManifest(idx);
  await store.setTag(repository, 'moving', idx.digest, new Date(NOW.getTime() - 60_000));
  // Only the last child's config labels carry build details: the image API reads them all.
  const children = idx.children ?? [];
  for (const [i, c] of children.entries()) {
    const child = await store.getImage(c.digest);
    await store.putConfigLabels(child!.configDigest!, i === children.length - 1 ? { 'org.opencontainers.image.revision': 'a'.repeat(40) } : { maintainer: 'someone' });
  }
}

beforeAll(async () => {
  dir = await makeTempDir('page-reads');
  store = await openStore(`sqlite:${dir}/catalog.db`);
  await seedTag('small/app', 2);
  await seedTag('large/app', 20);
});

afterAll(async () => {
  await store?.close();
  if (dir) await removeTempDir(dir);
});

async function readsFor(app: Hono, path: string): Promise<{ status: number; text: string; reads: string[] }> {
  reads.length = 0;
  const res = await app.request(path);
  const text = await res.text();
  return { status: res.status, text, reads: [...reads].sort() };
}

describe('store reads per page', () => {
  it('a tag page reads the same whether it shows 2 rows or 20', async () => {
    const ui = new Hono();
    mountUi(ui, { store: counted(store), gitlabUrls: ['https://gitlab.example.com'], now: () => NOW });
    const small = await readsFor(ui, '/r/small/app/-/tags/moving');
    const large = await readsFor(ui, '/r/large/app/-/tags/moving');
    expect(small.status).toBe(200);
    expect(large.status).toBe(200);
    // The page shows what was read: 19 earlier digests with their pipelines, 20 platforms.
    for (let i = 0; i < 19; i++) expect(large.text).toContain(`#${1000 + i}`);
    expect(large.text).toContain('linux/arch19');
    expect(large.reads).toEqual(small.reads);
    expect(large.reads.length).toBeLessThanOrEqual(5);
  });

  it('the image API reads an index’s children at once', async () => {
    const api = createApp({ store: counted(store) });
    const digestOf = async (repository: string) => (await store.tagHistory(repository, 'moving'))!.digest!;
    const small = await readsFor(api, `/api/v1/images/${await digestOf('small/app')}`);
    const large = await readsFor(api, `/api/v1/images/${await digestOf('large/app')}`);
    expect(large.status).toBe(200);
    expect((JSON.parse(large.text) as { build: { source: string; commit: { sha: string } } }).build).toMatchObject({ source: 'labels', commit: { sha: 'a'.repeat(40) } });
    expect(large.reads).toEqual(small.reads);
    expect(large.reads).toEqual(['getImage', 'getImages', 'manifestInsight']);
  });
});
