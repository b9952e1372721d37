// Bounds on what one answer holds: a tag moved 60 times shows its newest 50 digests, with paging
// (API and tag page), and a manifest over 256 KiB is cut on its page, with a link to an endpoint
// that serves its stored bytes. Manifests PUT to a real registry, their pushes POSTed to the
// webhook (in-process); both backends; read back over HTTP.
import type { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/oci/registry.js';
import { createApp } from '../../src/server/app.js';
import { mountUi } from '../../src/server/ui/index.js';
import { useRegistry } from '../helpers/fixtures.js';
import { MEDIA, sha256 } from '../helpers/images.js';
import { type Variants, pushBase, putVariant } from '../helpers/variants.js';
import { BACKENDS, useBackend } from '../catalog/backends.js';
import { hex } from '../catalog/seed.js';

const SECRET = `bounds-secret-${hex(16)}`;
const MOVES = 60;
const registry = useRegistry();

interface History {
  entries: { digest: string }[];
  nextCursor?: string;
}

const at = (i: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();

async function push(app: Hono, repository: string, tag: string, digest: string, i: number): Promise<void> {
  const res = await app.request('/api/v1/events', {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json', authorization: SECRET },
    body: JSON.stringify({ events: [{ id: hex(8), timestamp: at(i), action: 'push', target: { mediaType: MEDIA.ociManifest, digest, repository, tag } }] }),
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ applied: 1 });
}

describe.each(BACKENDS)('bounded answers, on %s', (backendName) => {
  const backend = useBackend(backendName);
  const repository = `bounds-${backendName}/app`;
  let app: Hono;
  let base: Variants;
  const moves: string[] = [];

  beforeAll(async () => {
    const catalog = await backend().fresh();
    const client = new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined });
    app = createApp({
      store: catalog.store,
      webhook: { secret: SECRET, client, registry: registry().host },
      ui: (a) => mountUi(a, { store: catalog.store, gitlabUrls: ['https://gitlab.example.com'], now: () => new Date() }),
    });
    base = await pushBase(registry().directHost, repository);
    for (let i = 0; i < MOVES; i++) moves.push(await putVariant(registry().url, base, repository, 'moving', { 'test.move': String(i) }));
    for (let i = 0; i < MOVES; i++) await push(app, repository, 'moving', moves[i]!, i);
  });

  it("the API gives a tag's history 50 entries at a time, newest first, with a cursor to the older ones", async () => {
    const first = (await (await app.request(`/api/v1/repositories/${repository}/tags/moving/history`)).json()) as History;
    expect(first.entries.map((e) => e.digest)).toEqual(moves.slice(-50).reverse());
    expect(first.nextCursor).toBeDefined();
    const second = (await (await app.request(`/api/v1/repositories/${repository}/tags/moving/history?cursor=${first.nextCursor}`)).json()) as History;
    expect(second.entries.map((e) => e.digest)).toEqual(moves.slice(0, MOVES - 50).reverse());
    expect(second.nextCursor).toBeUndefined();
    const bad = await app.request(`/api/v1/repositories/${repository}/tags/moving/history?cursor=abc`);
    expect(bad.status).toBe(400);
  });

  it('the tag page shows the newest 50 and links to the older ones', async () => {
    const page = await (await app.request(`/r/${repository}/-/tags/moving`)).text();
    const shown = (text: string): string[] => moves.filter((d) => text.includes(`title="${d}"`));
    // The first page holds the 50 newest: the current digest (shown above the table) and its 49 predecessors.
    expect(shown(page)).toEqual(moves.slice(MOVES - 50, MOVES - 1));
    const older = /href="([^"]*\?history=[^"#]*)#history" rel="next"/.exec(page);
    expect(older).not.toBeNull();
    const next = await (await app.request(older![1]!.replaceAll('&amp;', '&'))).text();
    expect(shown(next).filter((d) => moves.indexOf(d) < MOVES - 50)).toEqual(moves.slice(0, MOVES - 50));
    expect(next).not.toContain('rel="next"');
  });

  it('a manifest over 256 KiB is cut on its page, and served whole, as stored, by the raw manifest endpoint', async () => {
    const marker = `end-of-annotation-${hex(8)}`;
    const digest = await putVariant(registry().url, base, repository, 'huge', { 'test.padding': `${'x'.repeat(300 * 1024)}${marker}` });
    await push(app, repository, 'huge', digest, MOVES + 1);
    const page = await (await app.request(`/r/${repository}/-/tags/huge`)).text();
    expect(page).toContain('Cut at 256 KiB');
    expect(page).toContain(`href="/api/v1/images/${digest}/manifest"`);
    // The annotation's value is shown in the annotations table; the raw block stops before its end.
    const raw = page.slice(page.indexOf('id="raw"'));
    expect(raw).not.toContain(marker);

    const res = await app.request(`/api/v1/images/${digest}/manifest`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(MEDIA.ociManifest);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(sha256(bytes)).toBe(digest);
    const fromRegistry = Buffer.from(await (await fetch(`${registry().url}/v2/${repository}/manifests/${digest}`, { headers: { accept: MEDIA.ociManifest } })).arrayBuffer());
    expect(bytes.equals(fromRegistry)).toBe(true);
  });
});
