// `tagtrail serve` (the built CLI, a child process) with the browser mounted: /metrics, read over
// HTTP, labels each request by the pattern of the route that served it, never by its URL, and
// only a path no route serves as `unmatched`.
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTempDir } from '../helpers/fixtures.js';
import { freePort } from '../helpers/ports.js';
import { type ServeProcess, ensureBuilt, startServe } from './serve-process.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

/** The route label of every request-duration series, by method. */
function durationRoutes(text: string): Set<string> {
  const routes = new Set<string>();
  for (const m of text.matchAll(/^tagtrail_http_request_duration_seconds_count\{method="([A-Z]+)",route="([^"]*)"\} \d+$/gm)) routes.add(`${m[1]} ${m[2]}`);
  return routes;
}

describe('serve /metrics route labels', () => {
  const dir = useTempDir('metrics');
  let serve: ServeProcess;

  beforeAll(async () => {
    ensureBuilt();
    serve = await startServe([], {
      TAGTRAIL_LISTEN: `127.0.0.1:${await freePort()}`,
      TAGTRAIL_DB: `sqlite:${join(dir(), 'catalog.db')}`,
      TAGTRAIL_RECONCILE_INTERVAL: '0',
    });
  });

  afterAll(async () => {
    await serve?.stop();
  });

  it('labels each served route by its pattern, and only unserved paths as unmatched', async () => {
    const asked: [string, number][] = [
      ['/api/v1/repositories', 200],
      [`/api/v1/images/${DIGEST}`, 404],
      [`/api/v1/images/${DIGEST}/manifest`, 404],
      ['/api/v1/repositories/group/app/tags', 200],
      ['/api/v1/repositories/group/app/tags/v1/history', 404],
      ['/api/v1/images?repository=group/app', 200],
      ['/healthz', 200],
      ['/', 200],
      ['/api/v1/no-such-endpoint', 404],
      ['/no-such-page', 404],
    ];
    for (const [path, status] of asked) {
      const res = await fetch(`${serve.url}${path}`);
      await res.arrayBuffer();
      expect({ path, status: res.status }).toEqual({ path, status });
    }

    // A guard answers this one (the Host check): it still counts under the route it was for.
    const guarded = await new Promise<number>((resolve, reject) => {
      const req = request(`${serve.url}/api/v1/repositories`, { headers: { host: 'rebound.example.com' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    expect(guarded).toBe(421);

    const res = await fetch(`${serve.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect([...durationRoutes(text)].sort()).toEqual(
      [
        'GET /',
        'GET /api/v1/images',
        'GET /api/v1/images/:digest',
        'GET /api/v1/images/:digest/manifest',
        'GET /api/v1/repositories',
        'GET /api/v1/repositories/:repository/tags',
        'GET /api/v1/repositories/:repository/tags/:tag/history',
        'GET /healthz',
        'GET unmatched',
      ].sort(),
    );
    // The two unserved paths share one series; no label carries a requested URL.
    expect(text).toContain('tagtrail_http_requests_total{method="GET",route="unmatched",status="404"} 2');
    expect(text).toContain('tagtrail_http_requests_total{method="GET",route="/api/v1/images/:digest",status="404"} 1');
    expect(text).toContain('tagtrail_http_requests_total{method="GET",route="/api/v1/repositories",status="421"} 1');
    expect(text).not.toContain(DIGEST);
    expect(text).not.toContain('group/app');
  });
});
