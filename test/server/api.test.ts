// The JSON API, served in-process (app.request), over a catalog filled by a real sync of a real
// registry, on both backends.
import type { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import { sync } from '../../src/catalog/sync.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { createApp } from '../../src/server/app.js';
import { parseGitlabUrls } from '../../src/server/ui/links.js';
import { runCli } from '../helpers/cli.js';
import { useRegistry } from '../helpers/fixtures.js';
import { BACKENDS, type Catalog, countRows, useBackend } from '../catalog/backends.js';
import { type Seeded, seedRegistry } from '../catalog/seed.js';
import { expectMatchesContract } from './api-contract.js';

const registry = useRegistry();

function client(): RegistryClient {
  return new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined });
}

interface Json {
  status: number;
  body: Record<string, unknown>;
}

async function get(app: Hono, path: string): Promise<Json> {
  const res = await app.request(path);
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  if (res.headers.get('content-type')?.startsWith('application/json')) expectMatchesContract('GET', path, res.status, body);
  return { status: res.status, body };
}

type Item = { repository: string; tag: string; digest: string; mediaType: string | null; platforms: string[]; updatedAt: string; annotations: Record<string, string>; build: Record<string, unknown> | null };

function items(r: Json): Item[] {
  return r.body.items as Item[];
}

function expectBadParam(r: Json, name: string): void {
  expect(r.status).toBe(400);
  const error = r.body.error as { code: string; message: string };
  expect(error.code).toBe('USAGE');
  expect(error.message).toContain(name);
  expect(Object.keys(r.body)).toEqual(['error']);
}

describe.each(BACKENDS)('the API on %s', (backendName) => {
  const backend = useBackend(backendName);
  const prefix = `api-${backendName}`;
  let seeded: Seeded;
  let catalog: Catalog;
  let app: Hono;

  beforeAll(async () => {
    seeded = await seedRegistry(registry().host, prefix);
    catalog = await backend().fresh();
    const summary = await sync({ client: client(), store: catalog.store, registry: registry().host, prefix });
    expect(summary).toMatchObject({ complete: true, added: 4 });
    // The seeded images name gitlab.example.com: the API gives their URLs only for an allowed server.
    app = createApp({ store: catalog.store, gitlabServers: parseGitlabUrls(['https://gitlab.example.com']) });
  });

  it('answers /healthz, /readyz, /metrics and the OpenAPI document', async () => {
    expect(await get(app, '/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await get(app, '/readyz')).toEqual({ status: 200, body: { status: 'ready' } });
    const metrics = await app.request('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(await metrics.text()).toContain('tagtrail_http_requests_total{method="GET",route="/readyz",status="200"} 1');

    const doc = await get(app, '/api/v1/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths as object).sort()).toEqual(
      [
        '/api/v1/builds',
        '/api/v1/events',
        '/api/v1/gitlab/events',
        '/api/v1/images',
        '/api/v1/images/{digest}',
        '/api/v1/images/{digest}/manifest',
        '/api/v1/insights',
        '/api/v1/insights.csv',
        '/api/v1/openapi.json',
        '/api/v1/repositories',
        '/api/v1/repositories/{repository}/tags',
        '/api/v1/repositories/{repository}/tags/{tag}/history',
        '/healthz',
        '/metrics',
        '/readyz',
      ].sort(),
    );
    const imageParams = ((doc.body.paths as Record<string, { get: { parameters: { name: string }[] } }>)['/api/v1/images']?.get.parameters ?? []).map((p) => p.name);
    expect(imageParams).toEqual(['repository', 'tag', 'annotation', 'commit', 'pipeline', 'ref', 'verified', 'limit', 'cursor']);
  });

  it('lists repositories, filtered by q and paged', async () => {
    const all = await get(app, '/api/v1/repositories');
    expect(all.status).toBe(200);
    expect((all.body.items as { name: string }[]).map((r) => r.name)).toEqual(['app', 'labels', 'multi', 'plain'].map((n) => `${prefix}/${n}`));
    expect((all.body.items as Record<string, unknown>[])[0]).toMatchObject({ name: `${prefix}/app`, tagCount: 1, buildTagCount: 1 });
    const q = await get(app, '/api/v1/repositories?q=mult');
    expect((q.body.items as { name: string }[]).map((r) => r.name)).toEqual([`${prefix}/multi`]);
    const first = await get(app, '/api/v1/repositories?limit=3');
    expect((first.body.items as unknown[]).length).toBe(3);
    const second = await get(app, `/api/v1/repositories?limit=3&cursor=${first.body.nextCursor as string}`);
    expect((second.body.items as { name: string }[]).map((r) => r.name)).toEqual([`${prefix}/plain`]);
    expect(second.body.nextCursor).toBeUndefined();
  });

  it('finds an image by commit prefix, with build shaped as `tagtrail show` prints it', async () => {
    const r = await get(app, `/api/v1/images?commit=${seeded.app.commit.slice(0, 8)}`);
    expect(r.status).toBe(200);
    expect(r.body.nextCursor).toBeUndefined();
    expect(items(r)).toHaveLength(1);
    const item = items(r)[0]!;
    expect(Object.keys(item)).toEqual(['repository', 'tag', 'digest', 'mediaType', 'platforms', 'updatedAt', 'annotations', 'build']);
    expect(item).toMatchObject({ repository: seeded.app.repository, tag: 'v1', digest: seeded.app.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', platforms: [] });
    expect(item.annotations['com.gitlab.ci.commit_sha']).toBe(seeded.app.commit);
    expect(new Date(item.updatedAt).toISOString()).toBe(item.updatedAt);

    const show = await runCli(['show', '-o', 'json', `${registry().host}/${seeded.app.repository}:v1`]);
    expect(show.code).toBe(0);
    expect(item.build).toEqual((JSON.parse(show.stdout) as { build: unknown }).build);
    expect(item.build).toMatchObject({ source: 'annotations', commit: { sha: seeded.app.commit }, pipeline: { id: seeded.app.pipeline }, ref: { name: 'main', kind: 'branch' } });
  });

  it('finds an index by pipeline and by ref, with its platforms', async () => {
    const r = await get(app, `/api/v1/images?pipeline=${seeded.multi.pipeline}`);
    expect(items(r).map((i) => i.digest)).toEqual([seeded.multi.digest]);
    expect(items(r)[0]).toMatchObject({ mediaType: 'application/vnd.oci.image.index.v1+json', platforms: ['linux/amd64', 'linux/arm64/v8'] });
    expect(items(r)[0]?.build).toMatchObject({ pipeline: { id: seeded.multi.pipeline }, commit: { sha: seeded.multi.commit } });
    const byRef = await get(app, '/api/v1/images?ref=release');
    expect(items(byRef).map((i) => i.digest)).toEqual([seeded.multi.digest]);
    const show = await runCli(['show', '-o', 'json', `${registry().host}/${seeded.multi.repository}:v2`]);
    expect(items(r)[0]?.build).toEqual((JSON.parse(show.stdout) as { build: unknown }).build);
  });

  it('falls back to config labels for an image without build annotations', async () => {
    const r = await get(app, `/api/v1/images?commit=${seeded.labels.revision}`);
    expect(items(r).map((i) => i.digest)).toEqual([seeded.labels.digest]);
    expect(items(r)[0]?.build).toMatchObject({ source: 'labels', commit: { sha: seeded.labels.revision } });
    const show = await runCli(['show', '-o', 'json', `${registry().host}/${seeded.labels.repository}:v3`]);
    expect(items(r)[0]?.build).toEqual((JSON.parse(show.stdout) as { build: unknown }).build);
    const plain = await get(app, `/api/v1/images?repository=${seeded.plain.repository}`);
    expect(items(plain)[0]?.build).toBeNull();
  });

  it('ANDs repeated annotation filters, and takes KEY alone as "has the key"', async () => {
    const both = await get(app, `/api/v1/images?annotation=com.gitlab.ci.pipeline_id=${seeded.app.pipeline}&annotation=com.gitlab.ci.branch=main`);
    expect(items(both).map((i) => i.digest)).toEqual([seeded.app.digest]);
    const mismatch = await get(app, `/api/v1/images?annotation=com.gitlab.ci.pipeline_id=${seeded.app.pipeline}&annotation=com.gitlab.ci.branch=release`);
    expect(items(mismatch)).toEqual([]);
    const exists = await get(app, '/api/v1/images?annotation=com.gitlab.ci.job_name');
    expect(items(exists).map((i) => i.repository).sort()).toEqual([seeded.app.repository, seeded.multi.repository]);
    const existsAndRepo = await get(app, `/api/v1/images?annotation=com.gitlab.ci.job_name&repository=${seeded.multi.repository}&tag=v2`);
    expect(items(existsAndRepo).map((i) => i.digest)).toEqual([seeded.multi.digest]);
    const wrongTag = await get(app, `/api/v1/images?repository=${seeded.multi.repository}&tag=v1`);
    expect(items(wrongTag)).toEqual([]);
    // A value with = in it, and an encoded one.
    const encoded = await get(app, `/api/v1/images?annotation=${encodeURIComponent('com.gitlab.ci.project_url=https://gitlab.example.com/group/app')}`);
    expect(items(encoded)).toHaveLength(2);
  });

  it('pages through every image with limit and cursor', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await get(app, `/api/v1/images?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      seen.push(...items(r).map((i) => `${i.repository}:${i.tag}`));
      cursor = r.body.nextCursor as string | undefined;
      pages++;
    } while (cursor && pages < 10);
    expect(seen.sort()).toEqual([`${seeded.app.repository}:v1`, `${seeded.labels.repository}:v3`, `${seeded.multi.repository}:v2`, `${seeded.plain.repository}:latest`].sort());
  });

  it('answers a bad parameter with 400 and a message naming it', async () => {
    expectBadParam(await get(app, '/api/v1/images?commit=xyz'), 'commit');
    expectBadParam(await get(app, '/api/v1/images?commit=abc'), 'commit');
    expectBadParam(await get(app, '/api/v1/images?pipeline=12a'), 'pipeline');
    expectBadParam(await get(app, '/api/v1/images?limit=0'), 'limit');
    expectBadParam(await get(app, '/api/v1/images?limit=abc'), 'limit');
    expectBadParam(await get(app, '/api/v1/images?limit=100000'), 'limit');
    expectBadParam(await get(app, '/api/v1/images?repository=Group/App'), 'repository');
    expectBadParam(await get(app, '/api/v1/images?tag=-x'), 'tag');
    expectBadParam(await get(app, '/api/v1/images?annotation='), 'annotation');
    expectBadParam(await get(app, '/api/v1/images?annotation==value'), 'annotation');
    expectBadParam(await get(app, '/api/v1/images?ref='), 'ref');
    expectBadParam(await get(app, '/api/v1/images?cursor=!!!'), 'cursor');
    expectBadParam(await get(app, '/api/v1/images?commits=abcd'), 'commits');
    expectBadParam(await get(app, '/api/v1/images?commit=abcd&commit=ef01'), 'commit');
    expectBadParam(await get(app, '/api/v1/repositories?limit=-1'), 'limit');
    expectBadParam(await get(app, '/api/v1/repositories?x=1'), 'x');
    // A well-formed cursor from another query is refused too, by the store.
    const repoCursor = (await get(app, '/api/v1/repositories?limit=1')).body.nextCursor as string;
    const wrong = await get(app, `/api/v1/images?cursor=${repoCursor}`);
    expectBadParam(wrong, 'cursor');
  });

  it('treats values shaped like SQL injection as plain values', async () => {
    const before = await countRows(catalog, 'tags');
    const attempts = [
      `/api/v1/images?annotation=${encodeURIComponent("com.gitlab.ci.branch=main' OR '1'='1")}`,
      `/api/v1/images?annotation=${encodeURIComponent("com.gitlab.ci.branch'OR'1'='1")}`,
      `/api/v1/images?annotation=${encodeURIComponent('com.gitlab.ci.branch";--')}`,
      `/api/v1/images?ref=${encodeURIComponent("main'; DROP TABLE tags; --")}`,
      `/api/v1/images?ref=${encodeURIComponent('main" OR ""="')}`,
      `/api/v1/images?annotation=${encodeURIComponent('com.gitlab.ci.branch=%')}`,
      `/api/v1/images?annotation=${encodeURIComponent('com.gitlab.ci.branch=_%_')}`,
      `/api/v1/repositories?q=${encodeURIComponent("%' OR 1=1 --")}`,
      `/api/v1/repositories?q=${encodeURIComponent('%')}`,
      `/api/v1/repositories?q=${encodeURIComponent('_')}`,
    ];
    for (const path of attempts) {
      const r = await get(app, path);
      expect(r.status, path).toBe(200);
      expect(r.body.items, path).toEqual([]);
    }
    expectBadParam(await get(app, `/api/v1/images?repository=${encodeURIComponent("a' OR '1'='1")}`), 'repository');
    expectBadParam(await get(app, `/api/v1/images?annotation=${encodeURIComponent("com.gitlab.ci.branch' OR 1=1 --")}`), 'annotation');
    expectBadParam(await get(app, `/api/v1/images?commit=${encodeURIComponent("abcd' OR 1=1")}`), 'commit');
    expect(await countRows(catalog, 'tags')).toBe(before);
    expect(items(await get(app, '/api/v1/images?ref=main')).map((i) => i.digest)).toEqual([seeded.app.digest]);
  });

  it('shows one image in detail: the index annotations and each child', async () => {
    const r = await get(app, `/api/v1/images/${seeded.multi.digest}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      digest: seeded.multi.digest,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      platforms: ['linux/amd64', 'linux/arm64/v8'],
      annotations: { 'com.gitlab.ci.pipeline_id': seeded.multi.pipeline },
      build: { source: 'annotations', pipeline: { id: seeded.multi.pipeline } },
      tags: [{ repository: seeded.multi.repository, tag: 'v2' }],
      parents: [],
    });
    const children = r.body.children as { digest: string; platform: string | null; annotations: Record<string, string> | null }[];
    expect(children.map((c) => [c.digest, c.platform])).toEqual([
      [seeded.multi.children[0], 'linux/amd64'],
      [seeded.multi.children[1], 'linux/arm64/v8'],
      [seeded.multi.attestations[0], 'unknown/unknown'],
      [seeded.multi.attestations[1], 'unknown/unknown'],
    ]);
    expect(children[0]?.annotations).toEqual({});
    expect(children[2]?.annotations).toBeNull();
    expect((r.body.manifest as { manifests: unknown[] }).manifests).toHaveLength(4);

    const child = await get(app, `/api/v1/images/${seeded.multi.children[0]}`);
    expect(child.body).toMatchObject({ parents: [seeded.multi.digest], tags: [] });

    const labelled = await get(app, `/api/v1/images/${seeded.labels.digest}`);
    expect(labelled.body).toMatchObject({ labels: { maintainer: 'someone' }, build: { source: 'labels', commit: { sha: seeded.labels.revision } } });

    const missing = await get(app, `/api/v1/images/sha256:${'0'.repeat(64)}`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: { code: 'NOT_FOUND', message: `no image sha256:${'0'.repeat(64)} in the catalog` } });
    expectBadParam(await get(app, '/api/v1/images/sha256:xyz'), 'digest');
  });

  it('lists a repository’s tags and a tag’s history', async () => {
    const tags = await get(app, `/api/v1/repositories/${seeded.multi.repository}/tags`);
    expect(tags.status).toBe(200);
    expect(items(tags).map((i) => i.tag)).toEqual(['v2']);
    const history = await get(app, `/api/v1/repositories/${seeded.app.repository}/tags/v1/history`);
    expect(history.status).toBe(200);
    expect(history.body).toMatchObject({ repository: seeded.app.repository, tag: 'v1', digest: seeded.app.digest, deleted: false, entries: [{ digest: seeded.app.digest, until: null, end: null }] });
    expect((await get(app, `/api/v1/repositories/${seeded.app.repository}/tags/nope/history`)).status).toBe(404);
    expectBadParam(await get(app, '/api/v1/repositories/UPPER/tags'), 'repository');
    expect((await get(app, `/api/v1/repositories/${seeded.app.repository}`)).status).toBe(404);
  });

  it('answers unknown paths with a JSON 404, and the webhook with 404 when it has no secret', async () => {
    const r = await get(app, '/api/v1/nothing');
    expect(r).toEqual({ status: 404, body: { error: { code: 'NOT_FOUND', message: 'no such endpoint: GET /api/v1/nothing' } } });
    const hook = await app.request('/api/v1/events', { method: 'POST', body: '{"events":[]}', headers: { 'content-type': 'application/json' } });
    expect(hook.status).toBe(404);
    expect(((await hook.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
