// Crash safety, on both catalog backends: `kill -9` of the built CLI in the middle of a crawl
// (`tagtrail sync`) and in the middle of webhook ingestion (`tagtrail serve`), then a restart.
// The kill lands mid-crawl because a fault proxy in front of the registry slows every manifest
// request down, and the test kills as soon as the catalog holds some, but not all, of the tags.
// After the restart the catalog converges: its live tags are exactly the registry's, each on the
// registry's digest with its manifest stored, and no row is doubled.
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trackChild } from '../helpers/cleanup.js';
import { BIN, runBin } from '../helpers/cli.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { freePort } from '../helpers/ports.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { mountBlobs, pushBase, putVariant, registryTags, type Variants } from '../helpers/variants.js';
import { BACKENDS, type Catalog, useBackend } from '../catalog/backends.js';
import { ciAnnotations, hex } from '../catalog/seed.js';
import { ensureBuilt, startServe, until } from '../server/serve-process.js';

const SECRET = `crash-secret-${hex(16)}`;
const SLOW = { path: /\/manifests\//, fault: { kind: 'latency', ms: 60 } } as const;

beforeAll(() => {
  ensureBuilt();
});

/** Pushes `perRepo` tags (distinct manifests) into each of `repos` repositories under prefix. */
async function seed(url: string, v: Variants, prefix: string, repos: number, perRepo: number): Promise<void> {
  for (let r = 1; r <= repos; r++) {
    const repository = `${prefix}/r${r}`;
    await mountBlobs(url, v, repository);
    for (let t = 1; t <= perRepo; t++) {
      await putVariant(url, v, repository, `t${t}`, ciAnnotations(hex(20), String(1000 * r + t), 'main'));
    }
  }
}

/** The catalog's live tags as `repository:tag` -> digest, straight from SQL. */
async function liveTags(catalog: Catalog): Promise<Map<string, string>> {
  const rows = await catalog.sql(
    'SELECT r.name AS repository, g.name AS tag, g.digest AS digest FROM tags g JOIN repositories r ON r.id = g.repository_id WHERE g.deleted_at IS NULL',
  );
  return new Map(rows.map((row) => [`${String(row.repository)}:${String(row.tag)}`, String(row.digest)]));
}

/** Live tags in the catalog, through the Store (one pooled connection, cheap to poll). */
async function liveCount(catalog: Catalog): Promise<number> {
  let n = 0;
  let cursor: string | undefined;
  do {
    const page = await catalog.store.listRepositories({ limit: 500, ...(cursor ? { cursor } : {}) });
    for (const r of page.items) n += r.tagCount;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return n;
}

/** Exactly the registry's tags and digests, every manifest stored, nothing doubled. */
async function expectConverged(catalog: Catalog, registry: TestRegistry, prefix: string): Promise<void> {
  const truth = await truthOf(registry, prefix);
  const live = await liveTags(catalog);
  expect([...live].sort()).toEqual([...truth].sort());
  const doubled = [
    'SELECT r.name, g.name, count(*) AS n FROM tags g JOIN repositories r ON r.id = g.repository_id GROUP BY r.name, g.name HAVING count(*) > 1',
    'SELECT name, count(*) AS n FROM repositories GROUP BY name HAVING count(*) > 1',
    'SELECT digest, count(*) AS n FROM manifests GROUP BY digest HAVING count(*) > 1',
    'SELECT tag_id, key, value, count(*) AS n FROM tag_terms GROUP BY tag_id, key, value HAVING count(*) > 1',
  ];
  for (const q of doubled) expect(await catalog.sql(q), q).toEqual([]);
  const missing = await catalog.sql('SELECT g.name FROM tags g LEFT JOIN manifests m ON m.digest = g.digest WHERE g.deleted_at IS NULL AND m.id IS NULL');
  expect(missing, 'live tags without their manifest').toEqual([]);
  const orphanTerms = await catalog.sql('SELECT t.tag_id FROM tag_terms t JOIN tags g ON g.id = t.tag_id WHERE g.deleted_at IS NOT NULL');
  expect(orphanTerms, 'search terms of deleted tags').toEqual([]);
}

/** The registry's tags under prefix. */
async function truthOf(registry: TestRegistry, prefix: string): Promise<Map<string, string>> {
  return new Map([...(await registryTags(`http://${registry.directHost}`))].filter(([k]) => k.startsWith(`${prefix}/`)));
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}

// One registry per scenario for the whole file; each backend gets its own repositories.
let crawled: TestRegistry;
let crawlProxy: FaultProxy;
let notifying: TestRegistry;
let hookProxy: FaultProxy;
let hookPort: number;
const SYNC_TOTAL = 4 * 20 + 1;
const HOOK_TOTAL = 3 * 8 + 1;

beforeAll(async () => {
  crawled = await startRegistry();
  crawlProxy = await startFaultProxy({ upstream: `http://${crawled.directHost}` });
  hookPort = await freePort();
  notifying = await startRegistry({
    notifications: { url: `http://127.0.0.1:${hookPort}/api/v1/events`, headers: { Authorization: [SECRET] }, ignoredActions: ['pull'], ignoredMediaTypes: ['application/octet-stream'] },
  });
  hookProxy = await startFaultProxy({ upstream: `http://${notifying.directHost}` });
});

afterAll(async () => {
  await crawlProxy?.stop();
  await crawled?.stop();
  await hookProxy?.stop();
  await notifying?.stop();
});

describe.each(BACKENDS)('kill -9 on %s', (backendName) => {
  const backend = useBackend(backendName);

  describe('during sync', () => {
    const prefix = `crawl-${backendName}`;
    const TOTAL = SYNC_TOTAL;
    let registry: TestRegistry;
    let proxy: FaultProxy;

    beforeAll(async () => {
      registry = crawled;
      proxy = crawlProxy;
      const url = `http://${registry.directHost}`;
      // The base sorts after the r* repositories, so the crawl's first writes are a full r repository.
      const v = await pushBase(registry.directHost, `${prefix}/seed`);
      await seed(url, v, prefix, 4, 20);
      expect((await truthOf(registry, prefix)).size).toBe(TOTAL);
    });

    it('twice mid-crawl, then a run to the end: the catalog converges on the registry', { timeout: 150_000 }, async () => {
      const catalog = await backend().fresh();
      proxy.clearRules();
      proxy.addRule(SLOW);
      const args = ['sync', '--registry', proxy.host, '--repository', prefix, '--db', catalog.url, '--concurrency', '4', '-o', 'json'];
      let before = 0;
      for (let round = 1; round <= 2; round++) {
        const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
        trackChild(child);
        let stderr = '';
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        child.stdout!.resume();
        const end = exited(child);
        // Kill as soon as this run has written tags of its own, while others are still to come.
        await until(async () => {
          if (child.exitCode !== null) throw new Error(`sync exited ${child.exitCode} before the kill:\n${stderr}`);
          return (await liveCount(catalog)) > before ? true : undefined;
        }, 30_000, 25);
        child.kill('SIGKILL');
        expect(await end).toBe('SIGKILL');
        const now = await liveCount(catalog);
        expect(now, `round ${round}: killed mid-crawl`).toBeLessThan(TOTAL);
        before = now;
      }

      proxy.clearRules();
      const last = await runBin(args, { timeoutMs: 60_000 });
      expect(last.code, last.stderr).toBe(0);
      const summary = JSON.parse(last.stdout) as { complete: boolean; errorCount: number; resumedAfter: string | null };
      expect(summary).toMatchObject({ complete: true, errorCount: 0 });
      await expectConverged(catalog, registry, prefix);

      // A crawl from the start finds nothing to change.
      const again = await runBin([...args, '--restart'], { timeoutMs: 60_000 });
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ complete: true, errorCount: 0, added: 0, updated: 0, deleted: 0, unchanged: TOTAL });
      await expectConverged(catalog, registry, prefix);
    });
  });

  describe('during webhook ingestion', () => {
    const prefix = `hook-${backendName}`;
    const TOTAL = HOOK_TOTAL;

    it('while events queue up, then a restart: redelivered events converge, and a sync changes nothing', { timeout: 150_000 }, async () => {
      const catalog = await backend().fresh();
      const registry = notifying;
      const proxy = hookProxy;
      const env = { TAGTRAIL_LISTEN: `127.0.0.1:${hookPort}`, TAGTRAIL_REGISTRY: proxy.host, TAGTRAIL_DB: catalog.url, TAGTRAIL_WEBHOOK_SECRET: SECRET, TAGTRAIL_RECONCILE_INTERVAL: '0' };
      proxy.clearRules();
      proxy.addRule({ ...SLOW, method: 'GET', fault: { kind: 'latency', ms: 150 } });
      const first = await startServe([], env);
      const url = `http://${registry.directHost}`;
      const v = await pushBase(registry.directHost, `${prefix}/seed`);
      await seed(url, v, prefix, 3, 8);

      await until(async () => ((await liveCount(catalog)) >= 5 ? true : undefined), 30_000, 10);
      expect(await first.stop('SIGKILL')).toBeNull();
      expect(first.child.signalCode).toBe('SIGKILL');
      const atKill = await liveCount(catalog);
      expect(atKill, 'killed while events were still queued').toBeLessThan(TOTAL);

      // Same port: the registry resends the envelope that was cut off, then the rest of its queue.
      proxy.clearRules();
      const second = await startServe([], env);
      try {
        const truth = await truthOf(registry, prefix);
        expect(truth.size).toBe(TOTAL);
        await until(async () => ((await liveCount(catalog)) >= TOTAL ? true : undefined), 45_000, 50);
        await expectConverged(catalog, registry, prefix);
      } finally {
        expect(await second.stop()).toBe(0);
      }
      const sync = await runBin(['sync', '--registry', proxy.host, '--repository', prefix, '--db', catalog.url, '-o', 'json'], { timeoutMs: 60_000 });
      expect(sync.code, sync.stderr).toBe(0);
      expect(JSON.parse(sync.stdout)).toMatchObject({ complete: true, errorCount: 0, added: 0, updated: 0, deleted: 0, unchanged: TOTAL });
      await expectConverged(catalog, registry, prefix);
    });
  });
});
