// End to end: a real registry whose notifications go to `tagtrail serve` (the built CLI, a child
// process) over a real socket; images pushed with skopeo, deleted with a DELETE by digest. On
// both backends. Also the periodic reconcile, its lock across processes, secrets in the logs and
// a graceful SIGTERM.
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { CRAWL_LOCK } from '../../src/catalog/sync.js';
import { makeTempDir } from '../helpers/cleanup.js';
import { freePort } from '../helpers/ports.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, makeIndex, pushImage } from '../helpers/images.js';
import { BACKENDS, type Catalog, useBackend } from '../catalog/backends.js';
import { ciAnnotations, hex } from '../catalog/seed.js';
import { type ServeProcess, ensureBuilt, startServe, until } from './serve-process.js';

const SECRET = `e2e-secret-${hex(16)}`;

interface Item {
  repository: string;
  tag: string;
  digest: string;
  platforms: string[];
  build: { commit?: { sha: string } } | null;
}

async function search(base: string, query: string): Promise<Item[]> {
  const res = await fetch(`${base}/api/v1/images?${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Item[] }).items;
}

beforeAll(() => {
  ensureBuilt();
});

describe.each(BACKENDS)('registry notifications into tagtrail serve on %s', (backendName) => {
  const backend = useBackend(backendName);
  let registry: TestRegistry;
  let serve: ServeProcess;
  let catalog: Catalog;

  beforeAll(async () => {
    catalog = await backend().fresh();
    const port = await freePort();
    registry = await startRegistry({
      deleteEnabled: true,
      notifications: { url: `http://127.0.0.1:${port}/api/v1/events`, headers: { Authorization: [SECRET] }, ignoredActions: ['pull'], ignoredMediaTypes: ['application/octet-stream'] },
    });
    serve = await startServe([], {
      TAGTRAIL_LISTEN: `127.0.0.1:${port}`,
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

  it('makes a pushed image searchable within a second of the push', async () => {
    const dir = await makeTempDir('e2e');
    const commit = hex(20);
    const image = await makeImage(`${dir}/one`, { manifestAnnotations: ciAnnotations(commit, '501', 'main'), tag: 'v1' });
    const digest = await pushImage(image, `${registry.host}/e2e/app:v1`);
    const pushed = Date.now();
    const found = await until(async () => {
      const items = await search(serve.url, `commit=${commit.slice(0, 12)}`);
      return items.length > 0 ? items : undefined;
    }, 1000);
    expect(Date.now() - pushed).toBeLessThan(1000);
    expect(found).toMatchObject([{ repository: 'e2e/app', tag: 'v1', digest, build: { commit: { sha: commit } } }]);

    const indexCommit = hex(20);
    const index = await makeIndex(`${dir}/multi`, { indexAnnotations: ciAnnotations(indexCommit, '502', 'main'), tag: 'v2', attestations: true });
    const indexDigest = await pushImage(index, `${registry.host}/e2e/multi:v2`);
    const indexPushed = Date.now();
    const multi = await until(async () => {
      const items = await search(serve.url, 'pipeline=502');
      return items.length > 0 ? items : undefined;
    }, 1000);
    expect(Date.now() - indexPushed).toBeLessThan(1000);
    expect(multi).toMatchObject([{ repository: 'e2e/multi', digest: indexDigest, platforms: ['linux/amd64', 'linux/arm64/v8'] }]);
  });

  it('takes a tag out of search when its manifest is deleted, and keeps its history', async () => {
    const dir = await makeTempDir('e2e-del');
    const commit = hex(20);
    const digest = await pushImage(await makeImage(dir, { manifestAnnotations: ciAnnotations(commit, '503', 'main'), tag: 'v1' }), `${registry.host}/e2e/doomed:v1`);
    await until(async () => ((await search(serve.url, `commit=${commit}`)).length > 0 ? true : undefined), 2000);

    const res = await fetch(`${registry.url}/v2/e2e/doomed/manifests/${digest}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    await until(async () => ((await search(serve.url, `commit=${commit}`)).length === 0 ? true : undefined), 2000);
    expect(await search(serve.url, 'repository=e2e/doomed')).toEqual([]);

    const history = (await (await fetch(`${serve.url}/api/v1/repositories/e2e/doomed/tags/v1/history`)).json()) as Record<string, unknown>;
    expect(history).toMatchObject({ repository: 'e2e/doomed', tag: 'v1', digest: null, deleted: true, entries: [{ digest, end: 'deleted' }] });
    const detail = await fetch(`${serve.url}/api/v1/images/${digest}`);
    expect(detail.status).toBe(200);
    expect(await detail.json()).toMatchObject({ digest, tags: [] });
  });

  it('refuses a wrong secret over the socket, and never logs the secret', async () => {
    const res = await fetch(`${serve.url}/api/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json', authorization: `Bearer ${SECRET}-not` },
      body: '{"events":[]}',
    });
    expect(res.status).toBe(401);
    const metrics = await (await fetch(`${serve.url}/metrics`)).text();
    expect(metrics).toMatch(/tagtrail_webhook_envelopes_total\{result="accepted"\} [1-9]/);
    expect(metrics).toContain('tagtrail_webhook_envelopes_total{result="unauthorized"} 1');
    expect(metrics).toContain('tagtrail_process_cpu_seconds_total');
    // Each tag push written is counted in a batch (of one, unless pushes waited for each other).
    expect(metrics).toMatch(/tagtrail_webhook_push_batch_size_count [1-9]/);
    const all = [...serve.stdout, ...serve.stderr].join('\n');
    expect(all).not.toContain(SECRET);
    expect(serve.logs().some((l) => l.msg === 'notification applied')).toBe(true);
  });
});

describe('tagtrail serve: reconcile, lock, shutdown and configuration', () => {
  const backend = useBackend('postgres');
  let registry: TestRegistry;

  beforeAll(async () => {
    // No notifications: every change reaches the catalog only through the reconcile.
    registry = await startRegistry();
  });

  afterAll(async () => {
    await registry?.stop();
  });

  it('catches what the registry never notified, with one crawler at a time across processes', async () => {
    const catalog = await backend().fresh();
    // Hold the crawl lock, as another serve process crawling would.
    let release!: () => void;
    const held = catalog.store.withLock(CRAWL_LOCK, () => new Promise<void>((resolve) => (release = resolve)));
    const env = { TAGTRAIL_REGISTRY: registry.host, TAGTRAIL_DB: catalog.url, TAGTRAIL_LISTEN: '127.0.0.1:0' };
    const a = await startServe(['--reconcile-interval', '1'], env);
    const b = await startServe(['--reconcile-interval', '1'], env);
    try {
      const dir = await makeTempDir('reconcile');
      const commit = hex(20);
      const digest = await pushImage(await makeImage(dir, { manifestAnnotations: ciAnnotations(commit, '601', 'main'), tag: 'v1' }), `${registry.host}/quiet/app:v1`);
      registry.resetRequests();
      await a.waitForLog((l) => l.msg.startsWith('reconcile skipped'));
      await b.waitForLog((l) => l.msg.startsWith('reconcile skipped'));
      expect(registry.count({ kind: 'catalog' })).toBe(0);
      expect(await search(a.url, `commit=${commit}`)).toEqual([]);

      release();
      await held;
      const found = await until(async () => {
        const items = await search(b.url, `commit=${commit}`);
        return items.length > 0 ? items : undefined;
      }, 10_000, 100);
      expect(found.map((i) => i.digest)).toEqual([digest]);
      await until(async () => ((await search(a.url, `commit=${commit}`)).length > 0 ? true : undefined), 5000);

      // The two processes took turns: each crawl is one catalog listing, none overlapped.
      const completes = [...a.logs(), ...b.logs()].filter((l) => l.msg === 'reconcile complete');
      expect(completes.length).toBeGreaterThan(0);
    } finally {
      release?.();
      expect(await a.stop()).toBe(0);
      expect(await b.stop()).toBe(0);
    }
    expect(a.logs().at(-1)?.msg).toBe('stopped');
    expect(a.stdout.every((l) => l.startsWith('{'))).toBe(true);
  });

  it('without a webhook secret, answers the webhook with 404 and says so in the log', async () => {
    const catalog = await backend().fresh();
    const serve = await startServe(['--registry', registry.host, '--db', catalog.url, '--listen', '127.0.0.1:0', '--reconcile-interval', '0'], {});
    try {
      const res = await fetch(`${serve.url}/api/v1/events`, { method: 'POST', body: '{"events":[]}', headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
      expect(serve.logs().find((l) => l.msg === 'listening')).toMatchObject({ webhook: 'off', reconcileIntervalSeconds: 0 });
      expect(serve.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('the webhook is off'))).toBe(true);
      expect((await fetch(`${serve.url}/readyz`)).status).toBe(200);
    } finally {
      expect(await serve.stop('SIGINT')).toBe(0);
    }
  });

  it('refuses an empty or short secret, and a secret without a registry', async () => {
    const { runBin } = await import('../helpers/cli.js');
    const empty = await runBin(['serve', '--registry', registry.host, '--webhook-secret', '', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('at least 16 characters (it is empty)');
    const short = await runBin(['serve', '--registry', registry.host, '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:'], { env: { TAGTRAIL_WEBHOOK_SECRET: 'short' } });
    expect(short.code).toBe(2);
    expect(short.stderr).not.toContain('short');
    const noRegistry = await runBin(['serve', '--listen', '127.0.0.1:0', '--db', 'sqlite::memory:'], { env: { TAGTRAIL_WEBHOOK_SECRET: SECRET } });
    expect(noRegistry.code).toBe(2);
    expect(noRegistry.stderr).toContain('needs --registry');
    expect(noRegistry.stderr).not.toContain(SECRET);
    const badListen = await runBin(['serve', '--listen', 'nowhere', '--db', 'sqlite::memory:']);
    expect(badListen.code).toBe(2);
    expect(badListen.stderr).toContain('--listen');
  });
});
