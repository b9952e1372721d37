// End to end: distribution's notification names the push's user agent (request.useragent); serve
// records it per manifest, and shows it as "pushed by" in the API, the insights and the tag page.
// skopeo pushes with User-Agent "skopeo/1.9.x" (a containers/image client).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTempDir } from '../helpers/fixtures.js';
import { freePort } from '../helpers/ports.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { BACKENDS, type Catalog, useBackend } from '../catalog/backends.js';
import { ciAnnotations, hex } from '../catalog/seed.js';
import { type ServeProcess, ensureBuilt, startServe, until } from './serve-process.js';

const SECRET = `pushers-${hex(16)}`;

beforeAll(() => {
  ensureBuilt();
});

describe.each(BACKENDS)('the pusher of a manifest on %s', (backendName) => {
  const backend = useBackend(backendName);
  const dir = useTempDir('pushers');
  let registry: TestRegistry;
  let serve: ServeProcess;
  let catalog: Catalog;

  beforeAll(async () => {
    catalog = await backend().fresh();
    const port = await freePort();
    registry = await startRegistry({ notifications: { url: `http://127.0.0.1:${port}/api/v1/events`, headers: { Authorization: [SECRET] }, ignoredActions: ['pull'] } });
    serve = await startServe([], { TAGTRAIL_LISTEN: `127.0.0.1:${port}`, TAGTRAIL_REGISTRY: registry.host, TAGTRAIL_DB: catalog.url, TAGTRAIL_WEBHOOK_SECRET: SECRET, TAGTRAIL_RECONCILE_INTERVAL: '0' });
  });

  afterAll(async () => {
    await serve?.stop();
    await registry?.stop();
  });

  it('records the user agent of the push and shows it as pushed by', async () => {
    const commit = hex(20);
    const image = await makeImage(`${dir()}/one`, { manifestAnnotations: ciAnnotations(commit, '601', 'main'), tag: 'v1' });
    const digest = await pushImage(image, `${registry.host}/push/app:v1`);
    const detail = await until(async () => {
      const res = await fetch(`${serve.url}/api/v1/images/${digest}`);
      if (res.status !== 200) return undefined;
      const body = (await res.json()) as { pushedBy: { pusher: string; userAgent: string } | null };
      return body.pushedBy ? body : undefined;
    }, 10_000, 50);
    expect(detail.pushedBy?.pusher, detail.pushedBy?.userAgent).toBe('containers');
    expect(detail.pushedBy?.userAgent).toMatch(/^skopeo\//);
    const rows = await catalog.sql(`SELECT pusher FROM manifest_pushers WHERE digest = '${digest}'`);
    expect(rows).toEqual([{ pusher: 'containers' }]);
    const insights = (await (await fetch(`${serve.url}/api/v1/insights`)).json()) as { pushedBy: Record<string, number> };
    expect(insights.pushedBy.containers).toBeGreaterThanOrEqual(1);
    const insightsPage = await (await fetch(`${serve.url}/insights`)).text();
    expect(insightsPage).toMatch(/data-insight="pushed-by">[^<]*containers 1/);
    const page = await (await fetch(`${serve.url}/r/push/app/-/tags/v1`)).text();
    expect(page).toContain('Pushed by');
    expect(page).toContain('containers');
  });
});
