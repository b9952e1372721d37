// The webhook, in-process (app.request), with crafted envelopes: authentication, malformed and
// oversized bodies (nothing stored, checked with SQL), duplicates and out-of-order events, and
// an event url that must never be fetched. Manifests come from a real registry; both backends.
import type { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/oci/registry.js';
import { createApp } from '../../src/server/app.js';
import { makeTempDir } from '../helpers/cleanup.js';
import { startRecordingServer } from '../helpers/fault-proxy.js';
import { useRegistry } from '../helpers/fixtures.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { BACKENDS, type Catalog, countRows, useBackend } from '../catalog/backends.js';
import { ciAnnotations, hex } from '../catalog/seed.js';
import { expectMatchesContract } from './api-contract.js';

const SECRET = 'webhook-secret-0123456789abcdef';
const MEDIA = 'application/vnd.docker.distribution.events.v1+json';
const TABLES = ['repositories', 'manifests', 'annotations', 'tags', 'tag_events', 'manifest_deletions', 'tag_terms'];

const registry = useRegistry();

function client(maxAttempts = 3): RegistryClient {
  return new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined, retry: { maxAttempts, baseDelayMs: 10 } });
}

function pushEvent(repository: string, tag: string, digest: string, at: Date, url?: string): Record<string, unknown> {
  return {
    id: hex(8),
    timestamp: at.toISOString(),
    action: 'push',
    target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 500, digest, length: 500, repository, url: url ?? `http://registry.invalid/v2/${repository}/manifests/${digest}`, tag },
    request: { id: hex(8), addr: '127.0.0.1:1', host: 'registry', method: 'PUT', useragent: 'test' },
    actor: {},
    source: { addr: 'registry:5000', instanceID: 'x' },
  };
}

function deleteTagEvent(repository: string, tag: string, at: Date): Record<string, unknown> {
  return { id: hex(8), timestamp: at.toISOString(), action: 'delete', target: { repository, tag } };
}

function deleteManifestEvent(repository: string, digest: string, at: Date): Record<string, unknown> {
  return { id: hex(8), timestamp: at.toISOString(), action: 'delete', target: { repository, digest } };
}

async function post(app: Hono, body: BodyInit | null, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await app.request('/api/v1/events', {
    method: 'POST',
    body,
    headers: { 'content-type': MEDIA, authorization: SECRET, ...headers },
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
  const json = (await res.json()) as Record<string, unknown>;
  expectMatchesContract('POST', '/api/v1/events', res.status, json);
  return { status: res.status, json };
}

function envelope(...events: Record<string, unknown>[]): string {
  return JSON.stringify({ events });
}

async function counts(catalog: Catalog): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) out[t] = await countRows(catalog, t);
  return out;
}

async function newImage(repository: string, tag: string): Promise<{ digest: string; commit: string }> {
  const commit = hex(20);
  const dir = await makeTempDir('hook');
  const digest = await pushImage(await makeImage(dir, { manifestAnnotations: ciAnnotations(commit, '7', 'main'), tag }), `${registry().host}/${repository}:${tag}`);
  return { digest, commit };
}

const t = (s: number): Date => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

describe.each(BACKENDS)('the webhook on %s', (backendName) => {
  const backend = useBackend(backendName);
  const prefix = `hook-${backendName}`;
  let catalog: Catalog;
  let app: Hono;

  beforeAll(async () => {
    catalog = await backend().fresh();
    app = createApp({ store: catalog.store, webhook: { secret: SECRET, client: client(), registry: registry().host, maxBodyBytes: 64 * 1024 } });
  });

  it('refuses a missing or wrong secret with 401, storing nothing', async () => {
    const img = await newImage(`${prefix}/auth`, 'v1');
    const body = envelope(pushEvent(`${prefix}/auth`, 'v1', img.digest, t(1)));
    const before = await counts(catalog);
    registry().resetRequests();
    for (const authorization of [undefined, '', 'wrong', `Bearer wrong`, `${SECRET}x`, SECRET.slice(0, -1), `Basic ${Buffer.from(`x:${SECRET}`).toString('base64')}`]) {
      const res = await app.request('/api/v1/events', { method: 'POST', body, headers: { 'content-type': MEDIA, ...(authorization !== undefined ? { authorization } : {}) } });
      expect(res.status, String(authorization)).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="tagtrail"');
      const json = (await res.json()) as { error: { code: string; message: string } };
      expect(json.error.code).toBe('UNAUTHORIZED');
      expect(JSON.stringify(json)).not.toContain(SECRET);
    }
    expect(await counts(catalog)).toEqual(before);
    expect(registry().count()).toBe(0);
  });

  it('takes the secret bare, as GitLab sends it, or as a Bearer token', async () => {
    const repo = `${prefix}/auth-ok`;
    const a = await newImage(repo, 'bare');
    const b = await newImage(repo, 'bearer');
    expect((await post(app, envelope(pushEvent(repo, 'bare', a.digest, t(1))), { authorization: SECRET })).status).toBe(200);
    expect((await post(app, envelope(pushEvent(repo, 'bearer', b.digest, t(1))), { authorization: `Bearer ${SECRET}` })).status).toBe(200);
    expect((await post(app, envelope(), { authorization: `bearer   ${SECRET} ` })).status).toBe(200);
    const live = await catalog.store.searchImages({ repository: repo });
    expect(live.items.map((i) => i.tag).sort()).toEqual(['bare', 'bearer']);
  });

  it('refuses a malformed, invalid or oversized body with 400 or 413, storing nothing', async () => {
    const repo = `${prefix}/bad`;
    const img = await newImage(repo, 'v1');
    const good = pushEvent(repo, 'v1', img.digest, t(1));
    const before = await counts(catalog);
    registry().resetRequests();

    const cases: { body: BodyInit; headers?: Record<string, string>; status: number; message: string }[] = [
      { body: '{"events": [', status: 400, message: 'not valid JSON' },
      { body: '', status: 400, message: 'not valid JSON' },
      { body: '[]', status: 400, message: 'envelope' },
      { body: '{"events": {}}', status: 400, message: 'events' },
      { body: envelope(good, pushEvent('../../etc', 'v1', img.digest, t(2))), status: 400, message: 'events[1].target.repository' },
      { body: envelope(good, { ...pushEvent(repo, 'v1', img.digest, t(2)), timestamp: 'soon' }), status: 400, message: 'events[1].timestamp' },
      { body: envelope(good, deleteManifestEvent(repo, 'sha256:1234', t(3))), status: 400, message: 'events[1].target.digest' },
      { body: envelope(good), headers: { 'content-type': 'text/plain' }, status: 400, message: 'Content-Type' },
      { body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), status: 400, message: 'UTF-8' },
      { body: envelope(good, ...new Array(2000).fill(deleteTagEvent(repo, 'x'.repeat(60), t(4)))), status: 413, message: 'limit' },
    ];
    for (const c of cases) {
      const r = await post(app, c.body, c.headers);
      expect(r.status, c.message).toBe(c.status);
      expect((r.json.error as { message: string }).message, c.message).toContain(c.message);
      expect((r.json.error as { code: string }).code).toBe(c.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'USAGE');
    }

    // Streamed without a Content-Length: cut off at the limit all the same.
    const chunk = new TextEncoder().encode(`${envelope(good).slice(0, -2)},`);
    const filler = new TextEncoder().encode(`${JSON.stringify(deleteTagEvent(repo, 'v1', t(5)))},`);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(chunk);
        for (let i = 0; i < 1000; i++) controller.enqueue(filler);
        controller.close();
      },
    });
    const streamed = await post(app, stream);
    expect(streamed.status).toBe(413);

    expect(await counts(catalog)).toEqual(before);
    expect(registry().count()).toBe(0);
    // The good event alone goes through.
    expect((await post(app, envelope(good))).status).toBe(200);
    expect(await countRows(catalog, 'tags')).toBe(before.tags! + 1);
  });

  it('builds the manifest URL from its own registry: an event url on another host is never fetched', async () => {
    const other = await startRecordingServer(() => ({ status: 200, body: '{}' }));
    try {
      const repo = `${prefix}/elsewhere`;
      const img = await newImage(repo, 'v1');
      registry().resetRequests();
      const r = await post(app, envelope(pushEvent(repo, 'v1', img.digest, t(1), `${other.url}/v2/${repo}/manifests/${img.digest}`)));
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ events: 1, applied: 1 });
      expect(other.requests).toHaveLength(0);
      expect(registry().count({ method: 'GET', kind: 'manifest', repository: repo })).toBe(1);
      expect((await catalog.store.searchImages({ commit: img.commit })).items.map((i) => i.digest)).toEqual([img.digest]);
    } finally {
      await other.stop();
    }
  });

  it('is idempotent under duplicates: the same envelope twice changes nothing and reads nothing', async () => {
    const repo = `${prefix}/dup`;
    const img = await newImage(repo, 'v1');
    const body = envelope(pushEvent(repo, 'v1', img.digest, t(10)), deleteTagEvent(repo, 'gone', t(11)));
    registry().resetRequests();
    expect((await post(app, body)).json).toMatchObject({ events: 2, applied: 2, duplicate: 0 });
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(1);
    const after = await counts(catalog);
    expect((await post(app, body)).json).toMatchObject({ events: 2, applied: 0, duplicate: 2 });
    expect(await counts(catalog)).toEqual(after);
    expect(registry().count({ method: 'GET', kind: 'manifest' })).toBe(1);
  });

  it('converges whatever order events arrive in', async () => {
    const repo = `${prefix}/order`;
    const a = await newImage(repo, 'a');
    const b = await newImage(repo, 'b');
    // What happened: v1 → a (t20), v1 → b (t21), v1 deleted (t22). Sent newest first.
    for (const e of [deleteTagEvent(repo, 'v1', t(22)), pushEvent(repo, 'v1', b.digest, t(21)), pushEvent(repo, 'v1', a.digest, t(20))]) {
      expect((await post(app, envelope(e))).status).toBe(200);
    }
    expect((await catalog.store.searchImages({ repository: repo, tag: 'v1' })).items).toEqual([]);
    const history = await catalog.store.tagHistory(repo, 'v1');
    expect(history?.digest).toBeNull();
    expect(history?.entries.map((e) => [e.digest, e.end])).toEqual([
      [b.digest, 'deleted'],
      [a.digest, 'replaced'],
    ]);
    // A later push brings it back.
    await post(app, envelope(pushEvent(repo, 'v1', a.digest, t(30))));
    expect((await catalog.store.searchImages({ repository: repo, tag: 'v1' })).items.map((i) => i.digest)).toEqual([a.digest]);

    // A manifest deletion that overtakes the push it follows: the tag stays deleted.
    await post(app, envelope(deleteManifestEvent(repo, b.digest, t(41))));
    await post(app, envelope(pushEvent(repo, 'v2', b.digest, t(40))));
    expect((await catalog.store.searchImages({ repository: repo, tag: 'v2' })).items).toEqual([]);
    expect((await catalog.store.tagHistory(repo, 'v2'))?.entries.map((e) => e.end)).toEqual(['deleted']);
  });

  it('records nothing for a push whose manifest the registry does not have, and answers 502 when the registry cannot be read', async () => {
    const repo = `${prefix}/gone`;
    const missing = `sha256:${'e'.repeat(64)}`;
    const untouched = await counts(catalog);
    const r = await post(app, envelope(pushEvent(repo, 'v1', missing, t(1))));
    expect(r).toMatchObject({ status: 200, json: { applied: 0, missing: 1 } });
    expect(await counts(catalog)).toEqual(untouched);

    const down = createApp({ store: catalog.store, webhook: { secret: SECRET, client: client(1), registry: '127.0.0.1:1' } });
    const before = await counts(catalog);
    const failed = await post(down, envelope(pushEvent(`${prefix}/down`, 'v1', `sha256:${'f'.repeat(64)}`, t(1))));
    expect(failed.status).toBe(502);
    expect((failed.json.error as { code: string }).code).toBe('REGISTRY');
    expect(await counts(catalog)).toEqual(before);
  });
});
