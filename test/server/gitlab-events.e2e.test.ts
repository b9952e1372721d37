// End to end: GitLab's Pipeline and Job events (sent by the GitLab stand-in as GitLab sends them)
// into `tagtrail serve` (the built CLI, a child process), which re-crawls the project's container
// repositories, listed through the stand-in's REST API, from a real registry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useGitlab, useRegistry, useTempDir } from '../helpers/fixtures.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { BACKENDS, useBackend } from '../catalog/backends.js';
import { ciAnnotations, hex } from '../catalog/seed.js';
import { type ServeProcess, ensureBuilt, startServe, until } from './serve-process.js';
import { expectMatchesContract } from './api-contract.js';

const SECRET = `gitlab-hook-${hex(16)}`;
const TOKEN = `glpat-${hex(10)}`;

beforeAll(() => {
  ensureBuilt();
});

describe('GitLab Pipeline and Job events into tagtrail serve', () => {
  const backend = useBackend(BACKENDS[0]);
  const gitlab = useGitlab({
    tokens: [{ token: TOKEN, username: 'bot', scopes: ['read_api', 'read_registry'] }],
    groups: [{ path: 'acme', members: { bot: 'reporter' } }],
    projects: [{ path: 'acme/app', repositories: [''] }, { path: 'acme/burst', repositories: ['', 'sub'] }],
  });
  const registry = useRegistry();
  const dir = useTempDir('gitlab-events');
  let serve: ServeProcess;
  const hook = (): string => `${serve.url}/api/v1/gitlab/events`;

  beforeAll(async () => {
    gitlab().setRegistryHost(registry().host);
    const catalog = await backend().fresh();
    serve = await startServe(['--gitlab-project', 'acme/app', '--gitlab-project', 'acme/burst'], {
      TAGTRAIL_LISTEN: '127.0.0.1:0',
      TAGTRAIL_REGISTRY: registry().host,
      TAGTRAIL_DB: catalog.url,
      TAGTRAIL_GITLAB_URL: gitlab().url,
      TAGTRAIL_GITLAB_TOKEN: TOKEN,
      TAGTRAIL_GITLAB_WEBHOOK_SECRET: SECRET,
      TAGTRAIL_RECONCILE_INTERVAL: '0',
    });
  });

  afterAll(async () => {
    await serve?.stop();
  });

  it('makes a tag the pipeline pushed searchable within 10 s of the Pipeline Hook', async () => {
    const commit = hex(20);
    const image = await makeImage(`${dir()}/app`, { manifestAnnotations: ciAnnotations(commit, '7001', 'main'), tag: 'v1' });
    const digest = await pushImage(image, `${registry().host}/acme/app:v1`);
    const res = await gitlab().sendPipelineEvent(hook(), SECRET, { project: 'acme/app', pipelineId: 7001, status: 'success', sha: commit, ref: 'main' });
    expect(res.status).toBe(202);
    const queued = await res.json();
    expectMatchesContract('POST', '/api/v1/gitlab/events', 202, queued);
    expect(queued).toMatchObject({ queued: true, project: 'acme/app', status: 'success' });
    const found = await until(async () => {
      const r = await fetch(`${serve.url}/api/v1/images?commit=${commit}`);
      const items = ((await r.json()) as { items: { repository: string; tag: string; digest: string }[] }).items;
      return items.length > 0 ? items : undefined;
    }, 10_000, 100);
    expect(found).toMatchObject([{ repository: 'acme/app', tag: 'v1', digest }]);
  });

  it('reads the project of a Job Hook without a project object from repository.homepage', async () => {
    const commit = hex(20);
    const image = await makeImage(`${dir()}/job`, { manifestAnnotations: ciAnnotations(commit, '7002', 'main'), tag: 'v2' });
    await pushImage(image, `${registry().host}/acme/app:v2`);
    const res = await gitlab().sendJobEvent(hook(), SECRET, { project: 'acme/app', pipelineId: 7002, jobId: 99, status: 'success', sha: commit, ref: 'main', withoutProjectObject: true });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ queued: true, project: 'acme/app' });
    await until(async () => {
      const r = await fetch(`${serve.url}/api/v1/images?commit=${commit}`);
      return ((await r.json()) as { items: unknown[] }).items.length > 0 ? true : undefined;
    }, 10_000, 100);
  });

  it('answers 401 to a wrong or missing X-Gitlab-Token without reading the body', async () => {
    for (const token of ['wrong-token-wrong-token', undefined]) {
      const res = await fetch(hook(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Pipeline Hook', ...(token ? { 'x-gitlab-token': token } : {}) },
        // Not JSON: reading it would answer 400.
        body: '{"object_kind": "pipeline", ',
      });
      expect(res.status).toBe(401);
    }
    // The same body with the right token is read, and refused as it is.
    const res = await fetch(hook(), { method: 'POST', headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Pipeline Hook', 'x-gitlab-token': SECRET }, body: '{"object_kind": "pipeline", ' });
    expect(res.status).toBe(400);
  });

  it('answers 200 to other events and to pipelines that have not ended, and queues nothing', async () => {
    const push = await fetch(hook(), { method: 'POST', headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': SECRET }, body: '{"object_kind":"push"}' });
    expect(push.status).toBe(200);
    const ignored = await push.json();
    expectMatchesContract('POST', '/api/v1/gitlab/events', 200, ignored);
    expect(ignored).toMatchObject({ ignored: true });
    const running = await gitlab().sendPipelineEvent(hook(), SECRET, { project: 'acme/app', pipelineId: 7003, status: 'running', sha: hex(20), ref: 'main' });
    expect(running.status).toBe(200);
    expect(await running.json()).toMatchObject({ queued: false });
  });

  it('turns a burst of 50 events for one project into at most 2 crawls', async () => {
    const image = await makeImage(`${dir()}/burst`, { manifestAnnotations: ciAnnotations(hex(20), '7100', 'main'), tag: 'v1' });
    await pushImage(image, `${registry().host}/acme/burst:v1`);
    await pushImage(image, `${registry().host}/acme/burst/sub:v1`);
    const tagLists = (): number => registry().count({ method: 'GET', kind: 'tags', repository: 'acme/burst' });
    const crawlsDone = (): number => serve.logs().filter((l) => l.msg === 'project crawl done' && l.project === 'acme/burst').length;
    expect(tagLists()).toBe(0);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2 === 0
          ? gitlab().sendJobEvent(hook(), SECRET, { project: 'acme/burst', pipelineId: 7100, jobId: 8000 + i, status: 'success', sha: hex(20), ref: 'main' })
          : gitlab().sendPipelineEvent(hook(), SECRET, { project: 'acme/burst', pipelineId: 7100 + i, status: 'failed', sha: hex(20), ref: 'main' }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(50).fill(202));
    await until(async () => (crawlsDone() >= 1 ? true : undefined), 15_000, 100);
    // Settle: a second crawl, if one was asked for during the first, starts after the debounce.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(crawlsDone()).toBeGreaterThanOrEqual(1);
    expect(crawlsDone()).toBeLessThanOrEqual(2);
    expect(tagLists()).toBeGreaterThanOrEqual(1);
    expect(tagLists()).toBeLessThanOrEqual(2);
    // Both repositories were crawled.
    expect(registry().count({ method: 'GET', kind: 'tags', repository: 'acme/burst/sub' })).toBeGreaterThanOrEqual(1);
  });
});
