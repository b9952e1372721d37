// tagtrail serve without sign-in: an open catalog only on loopback unless --auth none is written
// down, the Host check against DNS rebinding, and who may read /metrics. The real built CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { runBin } from '../../helpers/cli.js';
import { makeTempDir } from '../../helpers/cleanup.js';
import { createApp } from '../../../src/server/app.js';
import { openStore } from '../../../src/catalog/open.js';
import { hostCheck } from '../../../src/server/auth/host-check.js';
import { metricsGuard } from '../../../src/server/auth/metrics-guard.js';
import { type ServeProcess, ensureBuilt, startServe } from '../serve-process.js';
import { rawRequest } from './http.js';

let dir: string;
beforeAll(async () => {
  ensureBuilt();
  dir = await makeTempDir('access-open');
});

describe('an open catalog must be written down', () => {
  it('refuses a non-loopback --listen without --auth: exit 2, naming --auth', async () => {
    const r = await runBin(['serve', '--listen', '0.0.0.0:0', '--db', `sqlite:${dir}/a.db`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('0.0.0.0');
    expect(r.stderr).toContain('--auth none');
    const v6 = await runBin(['serve', '--listen', '[::]:0', '--db', `sqlite:${dir}/a.db`], { env: { TAGTRAIL_AUTH: '' } });
    expect(v6.code).toBe(2);
    expect(v6.stderr).toContain('--auth');
  });

  it('takes --auth none (or TAGTRAIL_AUTH=none) on a non-loopback --listen', async () => {
    // The database cannot be opened: serve gets past the access check and stops before listening.
    const missing = `sqlite:${dir}/no/such/dir/x.db`;
    for (const [args, env] of [[['--auth', 'none'], {}], [[], { TAGTRAIL_AUTH: 'none' }]] as const) {
      const r = await runBin(['serve', '--listen', '0.0.0.0:0', '--db', missing, ...args], { env });
      expect(r.stderr).not.toContain('--auth');
      // The catalog's own failure (exit 1), not the usage error of the access check (exit 2).
      expect(r.code).toBe(1);
      expect(r.stderr.toLowerCase()).toContain('catalog');
    }
  });

  it('refuses an unknown --auth mode and a short metrics token', async () => {
    const mode = await runBin(['serve', '--auth', 'ldap', '--db', `sqlite:${dir}/a.db`, '--listen', '127.0.0.1:0']);
    expect(mode.code).toBe(2);
    expect(mode.stderr).toContain('ldap');
    const env = await runBin(['serve', '--db', `sqlite:${dir}/a.db`, '--listen', '127.0.0.1:0'], { env: { TAGTRAIL_AUTH: 'ldap' } });
    expect(env.code).toBe(2);
    const token = await runBin(['serve', '--db', `sqlite:${dir}/a.db`, '--listen', '127.0.0.1:0'], { env: { TAGTRAIL_METRICS_TOKEN: 'short' } });
    expect(token.code).toBe(2);
    expect(token.stderr).toContain('metrics token');
  });
});

describe('the Host check without --public-url', () => {
  let serve: ServeProcess;
  beforeAll(async () => {
    serve = await startServe(['--db', `sqlite:${dir}/host.db`, '--listen', '127.0.0.1:0', '--reconcile-interval', '0'], {});
  });
  afterAll(async () => {
    await serve?.stop();
  });

  it('answers localhost and loopback addresses', async () => {
    const port = new URL(serve.url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `127.1.2.3:${port}`, `[::1]:${port}`]) {
      const r = await rawRequest(`${serve.url}/api/v1/repositories`, { host });
      expect(r.status, host).toBe(200);
    }
  });

  it('answers 421 to any other name, on every page and the API (DNS rebinding)', async () => {
    const port = new URL(serve.url).port;
    for (const path of ['/', '/api/v1/repositories', '/api/v1/insights', '/healthz', '/metrics', '/search?q=abc']) {
      const r = await rawRequest(`${serve.url}${path}`, { host: `rebind.attacker.example:${port}` });
      expect(r.status, path).toBe(421);
      expect(JSON.parse(r.body)).toEqual({ error: { code: 'MISDIRECTED', message: expect.any(String) } });
    }
    expect((await rawRequest(`${serve.url}/`, { host: '' })).status).toBe(421);
  });

  it('serves /metrics on a loopback --listen without a token', async () => {
    const r = await rawRequest(`${serve.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.body).toContain('tagtrail_');
  });
});

describe('the Host check with --public-url', () => {
  let serve: ServeProcess;
  beforeAll(async () => {
    serve = await startServe(['--db', `sqlite:${dir}/public.db`, '--listen', '127.0.0.1:0', '--reconcile-interval', '0', '--public-url', 'https://tagtrail.example.com/'], {});
  });
  afterAll(async () => {
    await serve?.stop();
  });

  it('starts read-only without --registry: the origin is the public URL, build reports are off', () => {
    const listening = serve.logs().find((l) => l.msg === 'listening');
    expect(listening).toMatchObject({ publicUrl: 'https://tagtrail.example.com', buildReports: 'off' });
    expect(serve.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('build reports (POST /api/v1/builds) are off'))).toBe(true);
  });

  it("answers the public URL's host only; loopback only for /healthz", async () => {
    const port = new URL(serve.url).port;
    for (const host of ['tagtrail.example.com', 'TAGTRAIL.example.com', 'tagtrail.example.com:443']) {
      expect((await rawRequest(`${serve.url}/api/v1/repositories`, { host })).status, host).toBe(200);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'tagtrail.example.com:8443', 'other.example.com']) {
      expect((await rawRequest(`${serve.url}/api/v1/repositories`, { host })).status, host).toBe(421);
      expect((await rawRequest(`${serve.url}/`, { host })).status, host).toBe(421);
    }
    expect((await rawRequest(`${serve.url}/healthz`, { host: `127.0.0.1:${port}` })).status).toBe(200);
    expect((await rawRequest(`${serve.url}/healthz`, { host: `localhost:${port}` })).status).toBe(200);
    expect((await rawRequest(`${serve.url}/healthz`, { host: 'other.example.com' })).status).toBe(421);
    expect((await rawRequest(`${serve.url}/readyz`, { host: `127.0.0.1:${port}` })).status).toBe(421);
  });

  it('leaves the registry webhook to its own secret, whatever name the registry posts to', async () => {
    // The webhook is off here: its own 404, not the Host check's 421.
    const r = await rawRequest(`${serve.url}/api/v1/events`, { method: 'POST', host: 'tagtrail-internal:8080', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body).error.code).toBe('NOT_FOUND');
  });
});

describe('/metrics on a listen address others can reach', () => {
  const app = async (token?: string): Promise<Hono> => {
    const store = await openStore('sqlite::memory:');
    return createApp({ store, guards: [hostCheck(new URL('https://tagtrail.example.com')), metricsGuard({ loopbackListen: false, ...(token ? { token } : {}) })] });
  };
  const get = (a: Hono, authorization?: string): Response | Promise<Response> =>
    a.request('https://tagtrail.example.com/metrics', { headers: { host: 'tagtrail.example.com', ...(authorization ? { authorization } : {}) } });

  it('answers 401 without the metrics token, 200 with it', async () => {
    const token = 'metrics-token-0123456789abcdef';
    const a = await app(token);
    expect((await get(a)).status).toBe(401);
    expect((await get(a, 'Bearer wrong-token-0123456789')).status).toBe(401);
    expect((await get(a, token)).status).toBe(401);
    const ok = await get(a, `Bearer ${token}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('tagtrail_');
    // Other routes are not the metrics guard's business.
    expect((await a.request('https://tagtrail.example.com/healthz', { headers: { host: 'tagtrail.example.com' } })).status).toBe(200);
  });

  it('is closed to everyone without --metrics-token', async () => {
    const a = await app();
    expect((await get(a)).status).toBe(401);
    expect((await get(a, 'Bearer anything-at-all-1234567')).status).toBe(401);
  });
});

describe('build reports without a named GitLab', () => {
  let serve: ServeProcess;
  beforeAll(async () => {
    // A registry is named, so reports could be checked; but no --gitlab-url: the links' default
    // (gitlab.com) must not become a trusted issuer of ID tokens.
    serve = await startServe(['--db', `sqlite:${dir}/issuers.db`, '--listen', '127.0.0.1:0', '--reconcile-interval', '0', '--registry', '127.0.0.1:9', '--public-url', 'https://tagtrail.example.com'], {});
  });
  afterAll(async () => {
    await serve?.stop();
  });

  it('are off, and serve says to name the GitLab whose tokens to trust', () => {
    const listening = serve.logs().find((l) => l.msg === 'listening');
    expect(listening).toMatchObject({ buildReports: 'off' });
    expect(serve.logs().some((l) => typeof l.msg === 'string' && l.msg.includes('--gitlab-url'))).toBe(true);
  });
});
