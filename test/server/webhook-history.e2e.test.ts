// Hostile input: notifications that try to rewrite history. Envelopes dated 9999-12-31, POSTed to
// a real `tagtrail serve` (child process) in front of a real registry: a push of a digest the
// registry does not have, a push into a repository that does not exist, and the deletion of a
// live tag. Then a real `tagtrail sync` must put every tag back to what the registry says. On both
// backends; read back with SQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EVENT_SKEW_MS } from '../../src/catalog/events.js';
import { makeTempDir } from '../helpers/cleanup.js';
import { runCli } from '../helpers/cli.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';
import { BACKENDS, type Catalog, useBackend } from '../catalog/backends.js';
import { hex } from '../catalog/seed.js';
import { type ServeProcess, ensureBuilt, startServe } from './serve-process.js';

const SECRET = `history-secret-${hex(16)}`;
const FAR_FUTURE = '9999-12-31T23:59:59.999999999Z';
const MEDIA = 'application/vnd.docker.distribution.events.v1+json';

function push(repository: string, tag: string, digest: string): Record<string, unknown> {
  return { id: hex(8), timestamp: FAR_FUTURE, action: 'push', target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, repository, tag } };
}

async function post(base: string, events: Record<string, unknown>[]): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/api/v1/events`, { method: 'POST', headers: { 'content-type': MEDIA, authorization: SECRET }, body: JSON.stringify({ events }) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function liveTags(catalog: Catalog): Promise<string[]> {
  const rows = await catalog.sql(
    `SELECT r.name AS repository, g.name AS tag, g.digest FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE g.deleted_at IS NULL ORDER BY r.name, g.name`,
  );
  return rows.map((r) => `${String(r.repository)}:${String(r.tag)}@${String(r.digest)}`);
}

beforeAll(() => {
  ensureBuilt();
});

describe.each(BACKENDS)('notifications cannot rewrite history, on %s', (backendName) => {
  const backend = useBackend(backendName);
  let registry: TestRegistry;
  let serve: ServeProcess;
  let catalog: Catalog;
  let v1: string;
  let v2: string;

  beforeAll(async () => {
    registry = await startRegistry();
    const dir = await makeTempDir('history');
    v1 = await pushImage(await makeImage(`${dir}/v1`, { layers: 1, tag: 'v1' }), `${registry.host}/victim/app:v1`);
    v2 = await pushImage(await makeImage(`${dir}/v2`, { layers: 1, tag: 'v2' }), `${registry.host}/victim/app:v2`);
    catalog = await backend().fresh();
    const first = await runCli(['sync', '--registry', registry.host, '--db', catalog.url, '-o', 'json']);
    expect(first.code).toBe(0);
    serve = await startServe([], {
      TAGTRAIL_LISTEN: '127.0.0.1:0',
      TAGTRAIL_REGISTRY: registry.host,
      TAGTRAIL_DB: catalog.url,
      TAGTRAIL_WEBHOOK_SECRET: SECRET,
      TAGTRAIL_RECONCILE_INTERVAL: '0',
    });
  });

  afterAll(async () => {
    await serve?.stop();
    await registry?.stop();
  });

  it('a push of a digest the registry does not have changes nothing, nor creates a repository', async () => {
    const before = await liveTags(catalog);
    const nowhere = `sha256:${hex(32)}`;
    // v2's digest exists in the registry (and the catalog), but not under ghost/repo.
    const r = await post(serve.url, [push('victim/app', 'v1', nowhere), push('ghost/repo', 'v1', nowhere), push('ghost/repo', 'v2', v2)]);
    expect(r.status).toBe(200);
    expect(await liveTags(catalog)).toEqual(before);
    expect(await catalog.sql(`SELECT name FROM repositories WHERE name = 'ghost/repo'`)).toEqual([]);
    expect(await catalog.sql(`SELECT digest FROM tag_events WHERE digest = '${nowhere}'`)).toEqual([]);
    expect(r.json).toMatchObject({ applied: 0, missing: 3, clamped: 3 });
  });

  it('an event dated 9999 is recorded at its receipt, and the next sync puts the deleted live tag back', async () => {
    const sent = Date.now();
    const r = await post(serve.url, [{ id: hex(8), timestamp: FAR_FUTURE, action: 'delete', target: { repository: 'victim/app', tag: 'v2' } }]);
    expect(r.status).toBe(200);
    const stored = await catalog.sql(`SELECT max(e.at) AS at FROM tag_events e JOIN tags g ON g.id = e.tag_id WHERE g.name = 'v2'`);
    expect(Number(stored[0]!.at)).toBeLessThanOrEqual(Date.now() + MAX_EVENT_SKEW_MS);
    expect(Number(stored[0]!.at)).toBeGreaterThanOrEqual(sent - 1000);
    expect(await liveTags(catalog)).toEqual([`victim/app:v1@${v1}`]);
    expect(r.json).toMatchObject({ applied: 1, clamped: 1 });

    const again = await runCli(['sync', '--registry', registry.host, '--db', catalog.url]);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain('left to newer events');
    expect(await liveTags(catalog)).toEqual([`victim/app:v1@${v1}`, `victim/app:v2@${v2}`]);
  });

  it("a crawl's observation outranks an event dated before the crawl started, even when the crawl changed nothing", async () => {
    const lastSet = Number((await catalog.sql(`SELECT max(e.at) AS at FROM tag_events e JOIN tags g ON g.id = e.tag_id WHERE g.name = 'v1'`))[0]!.at);
    const beforeCrawl = Date.now();
    expect(beforeCrawl).toBeGreaterThan(lastSet);
    const crawl = await runCli(['sync', '--registry', registry.host, '--db', catalog.url, '-o', 'json']);
    expect(crawl.code).toBe(0);
    expect(JSON.parse(crawl.stdout)).toMatchObject({ unchanged: 2, added: 0, updated: 0, deleted: 0 });
    // Dated after v1's last event but before this crawl started: newer than anything logged for v1,
    // older than what the registry said at the crawl.
    const r = await post(serve.url, [{ id: hex(8), timestamp: new Date(beforeCrawl).toISOString(), action: 'delete', target: { repository: 'victim/app', tag: 'v1' } }]);
    expect(r.status).toBe(200);
    expect(await liveTags(catalog)).toEqual([`victim/app:v1@${v1}`, `victim/app:v2@${v2}`]);
    expect(r.json).toMatchObject({ applied: 0, superseded: 1 });
  });
});
