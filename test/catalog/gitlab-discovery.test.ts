// `tagtrail sync --gitlab-group/--gitlab-project`: the repositories come from GitLab's REST API
// (the stand-in in helpers/gitlab/), the images from a real registry (distribution 2.8) whose
// token realm is the stand-in's /jwt/auth. On both catalog backends; checked with SQL and with
// what the registry and the stand-in served.
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { registryClient } from '../../src/commands/common.js';
import { gitlabDiscoveryFrom } from '../../src/commands/gitlab-discovery.js';
import type { Runtime } from '../../src/runtime.js';
import { checkpointKey, sync } from '../../src/catalog/sync.js';
import { Reconciler } from '../../src/server/reconcile.js';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy, startRecordingServer } from '../helpers/fault-proxy.js';
import { useGitlab, useRegistry, useTempDir } from '../helpers/fixtures.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { BACKENDS, countRows, useBackend } from './backends.js';

const TOKEN = 'glpat-crawler-Vb82kQ';
const ADMIN_TOKEN = 'glpat-root-Hx41mW';

/** Every repository in the registry, and the project GitLab puts it in. */
const ACME = ['acme/app', 'acme/app/sub/image', 'acme/tools/cli', 'acme/web', 'acme/web/assets'];

const gitlab = useGitlab({
  users: [{ username: 'root', admin: true }],
  tokens: [
    { token: TOKEN, username: 'crawler', scopes: ['read_api', 'read_registry'] },
    { token: ADMIN_TOKEN, username: 'root', scopes: ['api', 'read_registry', 'write_registry'] },
  ],
  groups: [{ path: 'acme', members: { crawler: 'reporter' } }],
  projects: [
    { path: 'acme/app', repositories: ['', 'sub/image'] },
    { path: 'acme/tools/cli', visibility: 'internal', repositories: [''] },
    { path: 'acme/web', visibility: 'public', repositories: ['', 'assets'] },
    // Neither the crawler's nor under acme: never listed, never crawled.
    { path: 'secret/hidden', repositories: [''] },
  ],
  // A small page, so five repositories take three pages (the client still asks for 100).
  maxPerPage: 2,
});
const registry = useRegistry(() => ({ auth: { tokenIssuer: gitlab() } }));
const dir = useTempDir('gitlab-discovery');

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { TAGTRAIL_GITLAB_TOKEN: TOKEN, TAGTRAIL_GITLAB_URL: gitlab().url, ...extra };
}

const listingRequests = (path: RegExp): number => gitlab().count((r) => r.method === 'GET' && path.test(r.path));

beforeAll(async () => {
  gitlab().setRegistryHost(registry().host);
  const image = await makeImage(join(dir(), 'image'), { layers: 1 });
  for (const repository of [...ACME, 'secret/hidden']) {
    await pushImage(image, `${registry().host}/${repository}:v1`, { creds: `root:${ADMIN_TOKEN}` });
  }
});

describe.each(BACKENDS)('discovery through GitLab into %s', (backendName) => {
  const backend = useBackend(backendName);

  it('lists a group through every page, never asks for the catalog, and records each project', async () => {
    const catalog = await backend().fresh();
    registry().resetRequests();
    gitlab().reset();

    const result = await runCli(['sync', '--gitlab-group', 'acme', '--db', catalog.url, '-o', 'json'], { env: env() });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // No --registry: the registry is the host in the listing's `location`.
    expect(JSON.parse(result.stdout)).toMatchObject({ registry: registry().host, listedBy: 'gitlab', complete: true, repositories: 5, tags: 5, added: 5, errorCount: 0 });

    // Three pages of the group listing, the first asked with per_page=100, all with the token.
    const pages = gitlab().requests.filter((r) => r.path === '/api/v4/groups/acme/registry/repositories');
    expect(pages).toHaveLength(3);
    expect(new URL(pages[0]!.url, 'http://x').searchParams.get('per_page')).toBe('100');
    expect(pages.map((r) => new URL(r.url, 'http://x').searchParams.get('page'))).toEqual([null, '2', '3']);
    expect(pages.every((r) => r.headers['private-token'] === TOKEN && r.status === 200)).toBe(true);

    // The registry served tags and a HEAD for each repository, and never its catalog.
    expect(registry().count({ kind: 'catalog' })).toBe(0);
    expect(registry().count({ method: 'HEAD', kind: 'manifest' })).toBe(5);
    expect(new Set(registry().requests.filter((r) => r.kind === 'tags').map((r) => r.repository))).toEqual(new Set(ACME));
    // The token itself went to the realm only: the registry saw Bearer JWTs.
    expect(registry().requests.some((r) => JSON.stringify(r.headers).includes(TOKEN))).toBe(false);
    const realm = gitlab().tokenService.requests.filter((r) => r.status === 200);
    expect(realm.length).toBeGreaterThan(0);
    expect(realm.every((r) => r.user === 'tagtrail')).toBe(true);

    const rows = await catalog.sql('SELECT name, live_tags, gitlab_project_id, gitlab_project_path, gitlab_visibility FROM repositories ORDER BY name');
    const project = (path: string): number => gitlab().model.projects.get(path)!.id;
    expect(rows.map((r) => ({ ...r, live_tags: Number(r.live_tags), gitlab_project_id: Number(r.gitlab_project_id) }))).toEqual([
      { name: 'acme/app', live_tags: 1, gitlab_project_id: project('acme/app'), gitlab_project_path: 'acme/app', gitlab_visibility: 'private' },
      { name: 'acme/app/sub/image', live_tags: 1, gitlab_project_id: project('acme/app'), gitlab_project_path: 'acme/app', gitlab_visibility: 'private' },
      { name: 'acme/tools/cli', live_tags: 1, gitlab_project_id: project('acme/tools/cli'), gitlab_project_path: 'acme/tools/cli', gitlab_visibility: 'internal' },
      { name: 'acme/web', live_tags: 1, gitlab_project_id: project('acme/web'), gitlab_project_path: 'acme/web', gitlab_visibility: 'public' },
      { name: 'acme/web/assets', live_tags: 1, gitlab_project_id: project('acme/web'), gitlab_project_path: 'acme/web', gitlab_visibility: 'public' },
    ]);
  });

  it('lists a project, its nested repository included, from TAGTRAIL_GITLAB_PROJECTS', async () => {
    const catalog = await backend().fresh();
    registry().resetRequests();
    gitlab().reset();
    const result = await runCli(['sync', '--registry', registry().host, '--db', catalog.url], { env: env({ TAGTRAIL_GITLAB_PROJECTS: 'acme/app' }) });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(listingRequests(/^\/api\/v4\/projects\/acme%2Fapp\/registry\/repositories$/)).toBe(1);
    expect(registry().count({ kind: 'catalog' })).toBe(0);
    const rows = await catalog.sql('SELECT name, gitlab_project_path FROM repositories ORDER BY name');
    expect(rows).toEqual([
      { name: 'acme/app', gitlab_project_path: 'acme/app' },
      { name: 'acme/app/sub/image', gitlab_project_path: 'acme/app' },
    ]);
  });

  it('stops on a project the token cannot see (GitLab answers 404) and writes nothing', async () => {
    const catalog = await backend().fresh();
    registry().resetRequests();
    gitlab().reset();
    const result = await runCli(['sync', '--gitlab-project', 'secret/hidden', '--registry', registry().host, '--db', catalog.url], { env: env() });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('knows no project secret/hidden, or the token may not see it (404 Project Not Found)');
    expect(result.stderr).not.toContain(TOKEN);
    expect(gitlab().requests.filter((r) => r.path === '/api/v4/projects/secret%2Fhidden/registry/repositories').map((r) => r.status)).toEqual([404]);
    expect(registry().count({ kind: 'tags' })).toBe(0);
    expect(await countRows(catalog, 'repositories')).toBe(0);
  });

  it('waits out a 429 with Retry-After, then lists', async () => {
    const catalog = await backend().fresh();
    gitlab().reset();
    gitlab().rateLimit(1, 1);
    const result = await runCli(['sync', '--gitlab-group', 'acme', '--db', catalog.url, '-o', 'json'], { env: env() });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ complete: true, repositories: 5, errorCount: 0 });
    const first = gitlab().requests.filter((r) => r.path === '/api/v4/groups/acme/registry/repositories').slice(0, 2);
    expect(first.map((r) => [r.url, r.status])).toEqual([
      [first[0]!.url, 429],
      [first[0]!.url, 200],
    ]);
    expect(await countRows(catalog, 'repositories')).toBe(5);
  });

  it('drives the reconcile of serve through the same source', async () => {
    const catalog = await backend().fresh();
    registry().resetRequests();
    const rt: Runtime = { env: env(), stdout: { write: () => true }, stderr: { write: () => true }, readStdin: async () => '', fetch: globalThis.fetch, now: () => new Date(), cwd: process.cwd() };
    const discovery = gitlabDiscoveryFrom(rt, { gitlabGroup: ['acme'] })!;
    const client = await registryClient(rt, {}, [registry().host], [discovery.api.origin], discovery.credentials(registry().host));
    const reconciler = new Reconciler({ store: catalog.store, client, registry: registry().host, intervalSeconds: 0, source: discovery.source(registry().host) });
    expect(await reconciler.runOnce()).toBe('complete');
    await reconciler.stop();
    expect(registry().count({ kind: 'catalog' })).toBe(0);
    const rows = await catalog.sql('SELECT name, gitlab_visibility FROM repositories WHERE live_tags = 1 ORDER BY name');
    expect(rows.map((r) => r.name)).toEqual(ACME);
  });

  it('resumes an interrupted crawl after the last repository done, with its own checkpoint', async () => {
    const catalog = await backend().fresh();
    const rt: Runtime = { env: env(), stdout: { write: () => true }, stderr: { write: () => true }, readStdin: async () => '', fetch: globalThis.fetch, now: () => new Date(), cwd: process.cwd() };
    const discovery = gitlabDiscoveryFrom(rt, { gitlabGroup: ['acme'] })!;
    const client = await registryClient(rt, {}, [registry().host], [discovery.api.origin], discovery.credentials(registry().host));
    const source = discovery.source(registry().host);
    const controller = new AbortController();
    const first = await sync({
      client,
      store: catalog.store,
      registry: registry().host,
      source,
      concurrency: 1,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.repositoriesDone >= 2) controller.abort();
      },
    });
    expect(first).toMatchObject({ complete: false, repositories: 2 });
    // Not the catalog's checkpoint: a catalog run would not resume this one.
    expect(await catalog.store.getCheckpoint(checkpointKey(registry().host, undefined))).toBeUndefined();
    expect(await catalog.store.getCheckpoint<{ last: string }>(checkpointKey(registry().host, undefined, source.id))).toMatchObject({ last: 'acme/app/sub/image' });

    registry().resetRequests();
    const second = await sync({ client, store: catalog.store, registry: registry().host, source });
    expect(second).toMatchObject({ complete: true, resumedAfter: 'acme/app/sub/image', repositories: 3, added: 3 });
    expect(registry().count({ kind: 'tags', repository: 'acme/app' })).toBe(0);
    expect(registry().count({ kind: 'catalog' })).toBe(0);
    expect(await countRows(catalog, 'repositories')).toBe(5);
  });

  it('retires a repository that no longer appears in the listing', async () => {
    const catalog = await backend().fresh();
    const first = await runCli(['sync', '--gitlab-group', 'acme', '--db', catalog.url], { env: env() });
    expect(first.code).toBe(0);
    const removed = gitlab().model.repositories.get('acme/web/assets')!;
    gitlab().model.removeRepository('acme/web/assets');
    try {
      const second = await runCli(['sync', '--gitlab-group', 'acme', '--db', catalog.url, '-o', 'json'], { env: env() });
      expect(second.code).toBe(0);
      expect(JSON.parse(second.stdout)).toMatchObject({ complete: true, repositories: 4, deleted: 1, unchanged: 4 });
    } finally {
      gitlab().model.repositories.set(removed.path, removed);
    }
    const rows = await catalog.sql(
      "SELECT r.name, r.live_tags, t.deleted_at FROM repositories r JOIN tags t ON t.repository_id = r.id WHERE r.name IN ('acme/web', 'acme/web/assets') ORDER BY r.name",
    );
    expect(rows.map((r) => [r.name, Number(r.live_tags), r.deleted_at === null])).toEqual([
      ['acme/web', 1, true],
      ['acme/web/assets', 0, false],
    ]);
  });
});

describe('the GitLab token', () => {
  it('is not sent to a token realm on another host, nor anywhere but GitLab and its realm', async () => {
    const elsewhere = await startRecordingServer(() => ({ status: 200, body: '{"token":"x"}' }));
    // A registry whose challenge names a realm that is neither GitLab nor the registry itself.
    const front = await startFaultProxy({ upstream: registry().url });
    try {
      // Every request is challenged so: the first one sync sends learns the realm from its answer.
      front.addRule({
        path: /^\/v2\//,
        fault: { kind: 'status', status: 401, headers: { 'www-authenticate': `Bearer realm="${elsewhere.url}/jwt/auth",service="${gitlab().service}"` } },
      });
      gitlab().setRegistryHost(front.host);
      gitlab().reset();
      const db = `sqlite:${join(dir(), 'realm.db')}`;
      const result = await runCli(['sync', '--gitlab-project', 'acme/web', '--db', db, '-o', 'json'], { env: env() });
      expect(result.code).toBe(1);
      const summary = JSON.parse(result.stdout) as { registry: string; errorCount: number; errors: { code: string; message: string }[] };
      expect(summary.registry).toBe(front.host);
      expect(summary.errors[0]).toMatchObject({ code: 'DENIED' });
      expect(summary.errors[0]!.message).toContain(`where tagtrail will not send the credentials from TAGTRAIL_GITLAB_TOKEN`);
      expect(elsewhere.requests).toHaveLength(0);
      expect(front.requests.some((r) => JSON.stringify(r.headers).includes(TOKEN))).toBe(false);
      // GitLab itself did get it, for the listing and the project lookup.
      expect(gitlab().requests.filter((r) => r.headers['private-token'] === TOKEN).length).toBeGreaterThan(0);
    } finally {
      gitlab().setRegistryHost(registry().host);
      await front.stop();
      await elsewhere.stop();
    }
  });

  it('is refused with an http GitLab URL that is not on loopback', async () => {
    const result = await runCli(['sync', '--gitlab-group', 'acme', '--registry', registry().host, '--db', `sqlite:${join(dir(), 'http.db')}`], {
      env: env({ TAGTRAIL_GITLAB_URL: 'http://gitlab.example.com' }),
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('only https is accepted');
  });
});
