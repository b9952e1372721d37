// A crawl's catalog writes in batches: putManifests writes what putManifest of each record would
// (read back with SQL, derived insight columns included), all or nothing; the crawl's store
// (crawl-store.ts) gathers concurrent look-ups and writes into those batches, and a bad record
// fails only its own caller. Both backends.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crawlStore } from '../../src/catalog/crawl-store.js';
import type { Store } from '../../src/catalog/store.js';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { BACKENDS, type Backend, type Catalog, startBackend } from './backends.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function image(n: number, annotated: boolean): ManifestRecord {
  const annotations: Record<string, string> = annotated
    ? { 'com.gitlab.ci.pipeline.id': String(1000 + n), 'org.opencontainers.image.revision': createHash('sha1').update(String(n)).digest('hex') }
    : { 'org.example.number': String(n) };
  const config = { mediaType: OCI_CONFIG, digest: sha(Buffer.from(`config ${n % 3}`)), size: 10 };
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [], annotations }));
  return {
    digest: sha(raw),
    mediaType: OCI_MANIFEST,
    raw,
    configDigest: config.digest,
    annotations,
    // An unannotated image comes with its config's labels, as ingest reads them.
    ...(annotated ? {} : { labels: { 'org.opencontainers.image.source': `https://gitlab.example.com/group/app-${n}` } }),
  };
}

function index(n: number, children: ManifestRecord[]): ManifestRecord {
  const manifests = children.map((c, i) => ({ mediaType: OCI_MANIFEST, digest: c.digest, size: c.raw.byteLength, platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' } }));
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests, annotations: { 'com.gitlab.ci.job.id': String(n) } }));
  return {
    digest: sha(raw),
    mediaType: OCI_INDEX,
    raw,
    annotations: { 'com.gitlab.ci.job.id': String(n) },
    children: manifests.map((m, i) => ({ digest: m.digest, mediaType: m.mediaType, size: m.size, platform: m.platform, manifest: children[i] })),
  };
}

/** Images (annotated or not, some sharing a config), an index with two new children, a duplicate. */
function records(): ManifestRecord[] {
  const images = Array.from({ length: 12 }, (_, n) => image(n, n % 4 !== 0));
  return [...images, index(1, [image(100, true), image(101, false)]), images[0]!];
}

/** Everything putManifest writes, as rows to compare (ids left out: they differ by insertion order). */
async function snapshot(c: Catalog): Promise<unknown> {
  return {
    manifests: await c.sql(
      'SELECT digest, media_type, size, config_digest, has_build, builder, builder_confidence, builder_evidence, build_source, media_family, platform_count FROM manifests ORDER BY digest',
    ),
    annotations: await c.sql('SELECT m.digest, a.key, a.value FROM annotations a JOIN manifests m ON m.id = a.manifest_id ORDER BY m.digest, a.key'),
    children: await c.sql(
      'SELECT m.digest, c.position, c.child_digest, c.media_type, c.size, c.os, c.architecture FROM manifest_children c JOIN manifests m ON m.id = c.parent_id ORDER BY m.digest, c.position',
    ),
    labels: await c.sql('SELECT g.digest, l.key, l.value FROM config_labels l JOIN configs g ON g.id = l.config_id ORDER BY g.digest, l.key'),
  };
}

/** The store, counting the calls that reach it. */
function counted(store: Store): { store: Store; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const wrapped = Object.create(store) as Store;
  for (const name of ['hasManifest', 'hasManifests', 'putManifest', 'putManifests', 'unreadable', 'unreadableAmong'] as const) {
    const original = (store[name] as (...args: unknown[]) => Promise<unknown>).bind(store);
    Object.assign(wrapped, {
      [name]: (...args: unknown[]) => {
        calls[name] = (calls[name] ?? 0) + 1;
        return original(...args);
      },
    });
  }
  return { store: wrapped, calls };
}

for (const name of BACKENDS) {
  describe(`catalog writes in batches (${name})`, () => {
    let backend: Backend;
    beforeAll(async () => {
      backend = await startBackend(name);
    });
    afterAll(async () => {
      await backend.stop();
    });

    it('putManifests writes what putManifest of each record writes, derived columns included', async () => {
      const one = await backend.fresh();
      const many = await backend.fresh();
      const list = records();
      const each: { inserted: boolean }[] = [];
      for (const r of list) each.push(await one.store.putManifest(r));
      const together = await many.store.putManifests(list);
      expect(together).toEqual(each);
      expect(together.at(-1)).toEqual({ inserted: false });
      const written = await snapshot(many);
      expect(written).toEqual(await snapshot(one));
      expect((written as { manifests: unknown[] }).manifests).toHaveLength(15);
      expect(await many.store.hasManifests([list[0]!.digest, list[12]!.digest, `sha256:${'0'.repeat(64)}`])).toEqual(new Set([list[0]!.digest, list[12]!.digest]));
      // Written again: nothing new.
      expect(await many.store.putManifests(list.slice(0, 3))).toEqual([{ inserted: false }, { inserted: false }, { inserted: false }]);
    });

    it('putManifests with one bad record writes none of them', async () => {
      const c = await backend.fresh();
      const good = image(1, true);
      const bad = { ...image(2, true), raw: Buffer.from('not the bytes of this digest') };
      await expect(c.store.putManifests([good, bad])).rejects.toThrow();
      expect(Number((await c.sql('SELECT count(*) AS n FROM manifests'))[0]!.n)).toBe(0);
    });

    it("a crawl's concurrent look-ups are one query, its concurrent writes one transaction; a bad record fails alone", async () => {
      const c = await backend.fresh();
      const { store, calls } = counted(c.store);
      const crawl = crawlStore(store);
      const list = Array.from({ length: 30 }, (_, n) => image(n, n % 2 === 0));
      await c.store.putManifest(list[0]!);

      const known = await Promise.all(list.map((r) => crawl.hasManifest(r.digest)));
      expect(known).toEqual(list.map((_, i) => i === 0));
      expect(calls.hasManifests).toBe(1);
      expect(calls.hasManifest).toBeUndefined();
      expect(await Promise.all(list.map((r) => crawl.unreadable(r.digest)))).toEqual(list.map(() => undefined));
      expect(calls.unreadableAmong).toBe(1);

      const bad = { ...image(99, true), raw: Buffer.from('not the bytes of this digest') };
      const outcomes = await Promise.allSettled([...list, bad].map((r) => crawl.putManifest(r)));
      expect(outcomes.slice(0, -1).map((o) => o.status === 'fulfilled' && o.value.inserted)).toEqual(list.map((_, i) => i !== 0));
      expect(outcomes.at(-1)!.status).toBe('rejected');
      // The batch failed on the bad record, then each went alone: only the bad one is missing.
      expect(calls.putManifests).toBe(1);
      expect(calls.putManifest).toBe(list.length + 1);
      const stored = await c.sql('SELECT digest FROM manifests ORDER BY digest');
      expect(stored.map((r) => r.digest)).toEqual(list.map((r) => r.digest).sort());

      // Without a bad record: one transaction for all of them.
      const more = Array.from({ length: 20 }, (_, n) => image(200 + n, true));
      await Promise.all(more.map((r) => crawl.putManifest(r)));
      expect(calls.putManifests).toBe(2);
      expect(calls.putManifest).toBe(list.length + 1);
      expect(Number((await c.sql('SELECT count(*) AS n FROM manifests'))[0]!.n)).toBe(list.length + more.length);
    });
  });
}
