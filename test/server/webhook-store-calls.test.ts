// What a tag push costs the catalog: the store calls the webhook makes per event, counted on the
// real store (each call goes through to it), with manifests from a real registry, on both
// backends. A new manifest is one look-up before its read and one write with its tag (on SQLite,
// one message to each connection thread); an index's platform manifests are looked up together.
// serve writes tag pushes through its batcher (push-batch.ts): a push that waits for no other is
// a batch of one, Store.pushTags.
import type { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/catalog/store.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { createApp } from '../../src/server/app.js';
import { makeTempDir } from '../helpers/cleanup.js';
import { useRegistry } from '../helpers/fixtures.js';
import { makeImage, makeIndex, pushImage } from '../helpers/images.js';
import { BACKENDS, type Catalog, useBackend } from '../catalog/backends.js';
import { ciAnnotations, hex } from '../catalog/seed.js';

const SECRET = 'webhook-secret-0123456789abcdef';
const MEDIA = 'application/vnd.docker.distribution.events.v1+json';

const registry = useRegistry();

/** The store, with every call counted by method name on its way through. */
function counted(store: Store): { store: Store; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const proxy = new Proxy(store, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(name), (calls.get(String(name)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

function pushEnvelope(repository: string, tag: string, digest: string, at: Date): string {
  return JSON.stringify({
    events: [
      {
        id: hex(8),
        timestamp: at.toISOString(),
        action: 'push',
        target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 500, digest, length: 500, repository, url: `http://registry.invalid/v2/${repository}/manifests/${digest}`, tag },
        request: { id: hex(8), addr: '127.0.0.1:1', host: 'registry', method: 'PUT', useragent: 'buildkit/v0.20.1' },
        actor: {},
        source: { addr: 'registry:5000', instanceID: 'x' },
      },
    ],
  });
}

const t = (s: number): Date => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

describe.each(BACKENDS)('the store calls of a tag push, on %s', (backendName) => {
  const backend = useBackend(backendName);
  const prefix = `calls-${backendName}`;
  let catalog: Catalog;
  let app: Hono;
  let calls: Map<string, number>;

  beforeAll(async () => {
    catalog = await backend().fresh();
    const store = counted(catalog.store);
    calls = store.calls;
    const client = new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined });
    app = createApp({ store: store.store, webhook: { secret: SECRET, client, registry: registry().host } });
  });

  async function post(body: string): Promise<Record<string, unknown>> {
    const res = await app.request('/api/v1/events', { method: 'POST', body, headers: { 'content-type': MEDIA, authorization: SECRET } });
    const json = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(json)).toBe(200);
    return json;
  }

  /** The calls made since the last look, by method. */
  function taken(): Record<string, number> {
    const out = Object.fromEntries(calls);
    calls.clear();
    return out;
  }

  async function tagRow(repository: string, tag: string): Promise<{ digest: unknown; pusher: unknown }[]> {
    return (
      await catalog.sql(
        `SELECT t.digest, p.pusher FROM tags t JOIN repositories r ON r.id = t.repository_id LEFT JOIN manifest_pushers p ON p.digest = t.digest WHERE r.name = '${repository}' AND t.name = '${tag}'`,
      )
    ).map((r) => ({ digest: r.digest, pusher: r.pusher }));
  }

  it('a new image: one look-up, one manifest GET, one write of the manifest with its tag; a duplicate: one look-up, one HEAD, one write', async () => {
    const repository = `${prefix}/image`;
    const dir = await makeTempDir('calls');
    const digest = await pushImage(await makeImage(dir, { manifestAnnotations: ciAnnotations(hex(20), '71', 'main'), tag: 'v1' }), `${registry().host}/${repository}:v1`);
    taken();
    registry().resetRequests();

    expect(await post(pushEnvelope(repository, 'v1', digest, t(1)))).toMatchObject({ applied: 1 });
    expect(taken()).toEqual({ lookupManifest: 1, pushTags: 1 });
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(1);
    expect(await tagRow(repository, 'v1')).toEqual([{ digest, pusher: 'buildkit' }]);

    registry().resetRequests();
    expect(await post(pushEnvelope(repository, 'v1', digest, t(1)))).toMatchObject({ duplicate: 1 });
    expect(taken()).toEqual({ lookupManifest: 1, pushTags: 1 });
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(0);
    expect(registry().count({ method: 'HEAD', kind: 'manifest' })).toBe(1);
  });

  it('a new index: its platform manifests are looked up together, then read, and written with the index and its tag', async () => {
    const repository = `${prefix}/index`;
    const dir = await makeTempDir('calls');
    const idx = await makeIndex(dir, { tag: 'multi', image: { manifestAnnotations: ciAnnotations(hex(20), '72', 'main') } });
    const digest = await pushImage(idx, `${registry().host}/${repository}:multi`);
    taken();
    registry().resetRequests();

    expect(await post(pushEnvelope(repository, 'multi', digest, t(2)))).toMatchObject({ applied: 1 });
    expect(taken()).toEqual({ lookupManifest: 1, hasManifests: 1, unreadableAmong: 1, pushTags: 1 });
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(1 + idx.images.length);
    expect(await tagRow(repository, 'multi')).toEqual([{ digest, pusher: 'buildkit' }]);
    const stored = await catalog.sql(`SELECT count(*) AS n FROM manifests WHERE digest IN ('${[digest, ...idx.images.map((i) => i.digest)].join("', '")}')`);
    expect(Number(stored[0]!.n)).toBe(1 + idx.images.length);
  });

  it('one new digest pushed to two tags at once: read once, stored once, both tags set', async () => {
    const repository = `${prefix}/twice`;
    const dir = await makeTempDir('calls');
    const digest = await pushImage(await makeImage(dir, { manifestAnnotations: ciAnnotations(hex(20), '73', 'main'), tag: 'a' }), `${registry().host}/${repository}:a`);
    taken();
    registry().resetRequests();

    const answers = await Promise.all([post(pushEnvelope(repository, 'a', digest, t(3))), post(pushEnvelope(repository, 'b', digest, t(3)))]);
    expect(answers.map((a) => a.applied)).toEqual([1, 1]);
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(1);
    // The second push shares the first one's read and writes its tag alone.
    expect(taken()).toEqual({ lookupManifest: 1, pushTags: 2 });
    expect(await tagRow(repository, 'a')).toEqual([{ digest, pusher: 'buildkit' }]);
    expect(await tagRow(repository, 'b')).toEqual([{ digest, pusher: 'buildkit' }]);
  });
});
