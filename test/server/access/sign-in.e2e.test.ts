// Sign in with GitLab, end to end: the GitLab stand-in as OpenID Connect provider (oidc-provider)
// and REST API, `tagtrail serve --auth gitlab` (the built CLI), Debian's chromium driven by
// playwright-core, and a catalog that `tagtrail sync` filled from a real registry. On both stores.
import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../../src/server/auth/seal.js';
import { runCli } from '../../helpers/cli.js';
import { useRegistry } from '../../helpers/fixtures.js';
import { type GitlabStandIn, startGitlab } from '../../helpers/gitlab/server.js';
import { freePort } from '../../helpers/ports.js';
import { type Seeded, hex, seedRegistry } from '../../catalog/seed.js';
import { BACKENDS, type Catalog, countRows, useBackend } from '../../catalog/backends.js';
import { type ServeProcess, ensureBuilt, startServe } from '../serve-process.js';
import { rawRequest } from './http.js';

const CHROMIUM = '/usr/bin/chromium';
const CLIENT_ID = 'tagtrail-app-id';
const CLIENT_SECRET = 'tagtrail-app-secret-0123456789';
const SESSION_SECRET = 'session-secret-0123456789abcdef0123456789abcdef';
const ALICE_TOKEN = 'glpat-alice-0123456789';

let port: number;
const registry = useRegistry();
let standIn: GitlabStandIn;
const gitlab = (): GitlabStandIn => standIn;
async function startStandIn(): Promise<void> {
  port = await freePort();
  standIn = await startGitlab({
    users: [{ username: 'alice' }, { username: 'bob' }],
    tokens: [{ token: ALICE_TOKEN, username: 'alice', scopes: ['read_api'] }],
    groups: [
      { path: 'alpha', members: { alice: 'reporter' } },
      { path: 'beta', members: { bob: 'developer' } },
    ],
    projects: [{ path: 'alpha/app' }, { path: 'beta/svc' }],
    oidcClients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`http://127.0.0.1:${port}/auth/callback`] }],
  });
}

let serve: ServeProcess;
let base: string;
let browser: Browser;
let alpha: Seeded;
let beta: Seeded;
let catalog: Catalog;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Debian's chromium at ${CHROMIUM}`);
  ensureBuilt();
  alpha = await seedRegistry(registry().host, 'alpha/app');
  beta = await seedRegistry(registry().host, 'beta/svc');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] });
}, 300_000);

afterAll(async () => {
  await browser?.close();
});

/** Signs in as `username` through GitLab's pages, starting at `path`; returns the context, signed in. */
async function signIn(username: string, path: string): Promise<{ context: BrowserContext; finalUrl: string }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}${path}`);
  // GitLab's sign-in form, then its authorization form.
  expect(new URL(page.url()).origin).toBe(gitlab().url);
  await page.fill('input[name=login]', username);
  await page.fill('input[name=password]', 'any password');
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await Promise.all([page.waitForURL((u) => u.origin === base), page.click('button[type=submit]')]);
  return { context, finalUrl: page.url() };
}

function sessionRows(): Promise<number> {
  return countRows(catalog, 'sessions');
}

/** The session row's id for a cookie value: the SHA-256 of the secret before the signature. */
function sessionId(cookieValue: string): string {
  const value = decodeURIComponent(cookieValue);
  return sha256(value.slice(0, value.lastIndexOf('.')));
}

describe.each(BACKENDS)('sign-in with GitLab on %s', (backendName) => {
  const backend = useBackend(backendName);

  beforeAll(async () => {
    catalog = await backend().fresh();
    await startStandIn();
    const sync = await runCli(['sync', '--registry', registry().url, '--db', catalog.url, '-o', 'json']);
    if (sync.code !== 0) throw new Error(`sync failed: ${sync.stderr}`);
    serve = await startServe(
      ['--db', catalog.url, '--listen', `127.0.0.1:${port}`, '--auth', 'gitlab', '--gitlab-url', gitlab().url, '--public-url', `http://127.0.0.1:${port}`, '--reconcile-interval', '0'],
      { TAGTRAIL_OAUTH_CLIENT_ID: CLIENT_ID, TAGTRAIL_OAUTH_CLIENT_SECRET: CLIENT_SECRET, TAGTRAIL_SESSION_SECRET: SESSION_SECRET, TAGTRAIL_ACCESS_CACHE_SECONDS: '2' },
    );
    base = serve.url;
  }, 300_000);

  afterAll(async () => {
    await serve?.stop();
    await standIn?.stop();
  });

  describe('sign in with GitLab', () => {
    it('sends a page request to GitLab and back to the page, signed in; signs out with a POST', async () => {
      const before = await sessionRows();
      const { context, finalUrl } = await signIn('alice', '/insights?weeks=12');
      try {
        expect(finalUrl).toBe(`${base}/insights?weeks=12`);
        const page = context.pages()[0]!;
        expect(await page.textContent('.signed-in-user')).toBe('alice');
        const cookies = await context.cookies(base);
        const session = cookies.find((c) => c.name === 'tagtrail_session');
        expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false });
        expect(await sessionRows()).toBe(before + 1);
        // The token GitLab issued is not in the database in clear.
        const issued = [...gitlab().model.tokens.values()].filter((t) => t.username === 'alice' && t.token !== ALICE_TOKEN);
        expect(issued.length).toBeGreaterThan(0);
        const stored = (await catalog.sql('SELECT token, created_at, expires_at FROM sessions')) as { token: string; created_at: number; expires_at: number }[];
        for (const row of stored) expect(Number(row.expires_at) - Number(row.created_at)).toBe(12 * 3600_000);
        for (const t of issued) expect(stored.some((s) => s.token.includes(t.token))).toBe(false);

        await Promise.all([page.waitForURL(`${base}/auth/signed-out`), page.click('form.account button[type=submit]')]);
        expect(await sessionRows()).toBe(before);
        expect((await context.cookies(base)).find((c) => c.name === 'tagtrail_session')).toBeUndefined();
        // Ended server-side: the old cookie opens nothing.
        const replay = await rawRequest(`${base}/api/v1/repositories`, { headers: { cookie: `tagtrail_session=${session!.value}` } });
        expect(replay.status).toBe(401);
      } finally {
        await context.close();
      }
    });

    it('refuses sign-out without the CSRF token, and an expired session; asks GitLab with PKCE, nonce and the scopes', async () => {
      const { context } = await signIn('alice', '/');
      const before = await sessionRows();
      try {
        const cookie = (await context.cookies(base)).find((c) => c.name === 'tagtrail_session')!;
        const forged = await rawRequest(`${base}/auth/logout`, { method: 'POST', headers: { cookie: `tagtrail_session=${cookie.value}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=wrong' });
        expect(forged.status).toBe(403);
        expect(await sessionRows()).toBe(before);
        const ok = await rawRequest(`${base}/api/v1/repositories`, { headers: { cookie: `tagtrail_session=${cookie.value}` } });
        expect(ok.status).toBe(200);
        // Expired (12 hours after sign-in): refused, as if it never was.
        const id = sessionId(cookie.value);
        const row = await catalog.store.findSession(id, new Date());
        expect(row).toBeDefined();
        await catalog.store.deleteSession(id, new Date());
        await catalog.store.putSession({ ...row!, expiresAt: new Date(Date.now() - 1) });
        const expired = await rawRequest(`${base}/api/v1/repositories`, { headers: { cookie: `tagtrail_session=${cookie.value}` } });
        expect(expired.status).toBe(401);
        const expiredPage = await rawRequest(`${base}/insights`, { headers: { cookie: `tagtrail_session=${cookie.value}` } });
        expect(expiredPage.status).toBe(302);
        expect(expiredPage.headers.location).toBe('/auth/login?next=%2Finsights');

        // The authorization request: PKCE S256, the scopes, a nonce.
        const start = await rawRequest(`${base}/auth/login?next=/`);
        expect(start.status).toBe(302);
        const authorize = new URL(String(start.headers.location));
        expect(authorize.origin).toBe(gitlab().url);
        expect(authorize.pathname).toBe('/oauth/authorize');
        expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
        expect(authorize.searchParams.get('scope')).toBe('openid read_api');
        expect(authorize.searchParams.get('redirect_uri')).toBe(`${base}/auth/callback`);
        expect(authorize.searchParams.get('nonce')).toBeTruthy();
      } finally {
        await context.close();
      }
    });

    it('refuses a callback whose state does not match, before using its code', async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        let callback: URL | undefined;
        // The consent form's POST: its redirects are followed here, and the one to serve's
        // callback is kept, not followed (playwright does not route redirected requests).
        await context.route(
          (u) => u.origin === gitlab().url && u.pathname.startsWith('/interaction/'),
          async (route) => {
            if (!(route.request().postData() ?? '').includes('prompt=consent')) return route.continue();
            const consent = await route.fetch({ maxRedirects: 0 });
            const resume = await context.request.get(new URL(consent.headers().location!, gitlab().url).href, { maxRedirects: 0 });
            callback = new URL(resume.headers().location!, base);
            return route.abort();
          },
        );
        await page.goto(`${base}/r/x`).catch(() => undefined);
        await page.fill('input[name=login]', 'alice');
        await page.fill('input[name=password]', 'any password');
        await page.click('button[type=submit]');
        await page.click('button:has-text("Continue")').catch(() => undefined);
        for (let i = 0; i < 800 && !callback; i++) await new Promise((r) => setTimeout(r, 25));
        expect(callback?.searchParams.get('code')).toBeTruthy();
        const transaction = (await context.cookies(`${base}/auth/`)).find((c) => c.name === 'tagtrail_signin')!;
        const cookie = `tagtrail_signin=${transaction.value}`;
        const before = await sessionRows();
        const forged = new URL(callback!);
        forged.searchParams.set('state', 'not-the-state');
        const wrong = await rawRequest(forged.href, { headers: { cookie } });
        expect(wrong.status).toBe(400);
        expect(await sessionRows()).toBe(before);
        // The same code with its own state still signs in: the state check stopped the other.
        const right = await rawRequest(callback!.href, { headers: { cookie } });
        expect(right.status).toBe(302);
        expect(right.headers.location).toBe('/r/x');
        expect(await sessionRows()).toBe(before + 1);
      } finally {
        await context.close();
      }
    });

    it('redirects back only to a path on serve itself', async () => {
      for (const next of ['https://attacker.example/', '//attacker.example/x', '/\\attacker.example', 'javascript:alert(1)']) {
        const r = await rawRequest(`${base}/auth/login?next=${encodeURIComponent(next)}`);
        expect(r.status).toBe(302);
      }
      const { context, finalUrl } = await signIn('alice', '/auth/login?next=https%3A%2F%2Fattacker.example%2F');
      await context.close();
      expect(finalUrl).toBe(`${base}/`);
    });

    it('refuses a forged session cookie: pages go to sign-in, the API answers 401', async () => {
      const page = await rawRequest(`${base}/`, { headers: { cookie: 'tagtrail_session=forged.value' } });
      expect(page.status).toBe(302);
      expect(page.headers.location).toBe('/auth/login?next=%2F');
      const api = await rawRequest(`${base}/api/v1/repositories`, { headers: { cookie: 'tagtrail_session=forged.value' } });
      expect(api.status).toBe(401);
      expect(JSON.parse(api.body).error.code).toBe('UNAUTHORIZED');
    });
  });

  describe('each person sees exactly the images they could pull', () => {
    it('lists, finds and counts only the member group\'s repositories in the browser', async () => {
      const { context } = await signIn('alice', '/');
      try {
        const page = context.pages()[0]!;
        const home = await page.textContent('main');
        for (const r of [alpha.app, alpha.multi, alpha.labels, alpha.plain]) expect(home).toContain(r.repository);
        expect(home).not.toContain('beta/');

        await page.goto(`${base}/search?q=${beta.app.commit}`);
        expect(await page.textContent('main')).not.toContain('beta/');
        await page.goto(`${base}/search?q=${alpha.app.commit}`);
        expect(await page.textContent('main')).toContain(alpha.app.repository);

        const hidden = await page.goto(`${base}/r/${beta.app.repository}`);
        expect(hidden?.status()).toBe(404);
        const tag = await page.goto(`${base}/r/${beta.app.repository}/-/tags/${beta.app.tag}`);
        expect(tag?.status()).toBe(404);

        await page.goto(`${base}/insights`);
        const insights = await page.textContent('main');
        expect(insights).toContain('alpha');
        expect(insights).not.toContain('beta');
      } finally {
        await context.close();
      }
    });

    it('answers a repository, tag or manifest the person cannot read byte for byte as a missing one', async () => {
      const { context } = await signIn('alice', '/');
      try {
        const cookie = `tagtrail_session=${(await context.cookies(base)).find((c) => c.name === 'tagtrail_session')!.value}`;
        const missing = 'zeta/svc/app';
        expect(missing.length).toBe(beta.app.repository.length);
        const other = `sha256:${'0'.repeat(64)}`;
        const pairs: [string, string][] = [
          [`/r/${beta.app.repository}`, `/r/${missing}`],
          [`/r/${beta.app.repository}/-/tags/${beta.app.tag}`, `/r/${missing}/-/tags/${beta.app.tag}`],
          [`/r/${beta.app.repository}/-/manifests/${beta.app.digest}`, `/r/${missing}/-/manifests/${other}`],
          [`/api/v1/repositories/${beta.app.repository}/tags/${beta.app.tag}/history`, `/api/v1/repositories/${missing}/tags/${beta.app.tag}/history`],
          [`/api/v1/repositories/${beta.app.repository}/tags`, `/api/v1/repositories/${missing}/tags`],
          [`/api/v1/images/${beta.app.digest}`, `/api/v1/images/${other}`],
        ];
        for (const [hiddenPath, missingPath] of pairs) {
          const hidden = await rawRequest(`${base}${hiddenPath}`, { headers: { cookie } });
          const absent = await rawRequest(`${base}${missingPath}`, { headers: { cookie } });
          expect(hidden.status, hiddenPath).toBe(absent.status);
          const same = (text: string): string => text.replaceAll(beta.app.repository, 'NAME').replaceAll(missing, 'NAME').replaceAll(beta.app.digest, 'DIGEST').replaceAll(other, 'DIGEST');
          expect(same(hidden.body), hiddenPath).toBe(same(absent.body));
          const { date: _d1, ...hiddenHeaders } = hidden.headers;
          const { date: _d2, ...absentHeaders } = absent.headers;
          expect(hiddenHeaders, hiddenPath).toEqual(absentHeaders);
        }
      } finally {
        await context.close();
      }
    });

    it('filters the API the same way for a token: list, search, image, insights and the CSV', async () => {
      const get = async (path: string): Promise<Response> => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${ALICE_TOKEN}` } });
      const repos = ((await (await get('/api/v1/repositories?limit=100')).json()) as { items: { name: string }[] }).items.map((r) => r.name);
      expect(repos.sort()).toEqual([alpha.app, alpha.labels, alpha.multi, alpha.plain].map((r) => r.repository).sort());
      expect(((await (await get(`/api/v1/images?commit=${beta.app.commit}`)).json()) as { items: unknown[] }).items).toEqual([]);
      expect(((await (await get(`/api/v1/images?commit=${alpha.app.commit}`)).json()) as { items: unknown[] }).items).toHaveLength(1);
      expect((await get(`/api/v1/images/${beta.app.digest}`)).status).toBe(404);
      expect((await get(`/api/v1/images/${alpha.app.digest}`)).status).toBe(200);
      const insights = (await (await get('/api/v1/insights')).json()) as { totals: { images: number }; groups: { name: string }[] };
      expect(insights.totals.images).toBe(4);
      expect(insights.groups.map((g) => g.name)).toEqual(['alpha']);
      const csv = await (await get('/api/v1/insights.csv')).text();
      expect(csv).toContain('alpha');
      expect(csv).not.toContain('beta');
    });

    it("renews the session's GitLab token with the refresh token when it expires", async () => {
      const { context } = await signIn('alice', '/');
      try {
        const cookie = `tagtrail_session=${(await context.cookies(base)).find((c) => c.name === 'tagtrail_session')!.value}`;
        const sealedBefore = await catalog.sql('SELECT token FROM sessions');
        // GitLab's OAuth access tokens expire after two hours: here, every one issued so far goes.
        for (const t of gitlab().model.tokens.values()) if (t.username === 'alice' && t.token !== ALICE_TOKEN) gitlab().model.revokeToken(t.token);
        const refreshes = (): number => gitlab().count((r) => r.method === 'POST' && r.path === '/oauth/token' && r.status === 200);
        const before = refreshes();
        // Until the cached answer (2 s here) runs out, then once more: every answer stays 200.
        for (let i = 0; i < 200 && refreshes() === before; i++) {
          const r = await rawRequest(`${base}/api/v1/repositories`, { headers: { cookie } });
          expect(r.status).toBe(200);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(refreshes()).toBe(before + 1);
        const after = await rawRequest(`${base}/api/v1/repositories`, { headers: { cookie } });
        expect(after.status).toBe(200);
        expect((JSON.parse(after.body) as { items: { name: string }[] }).items.map((r) => r.name)).toContain(alpha.app.repository);
        expect(await catalog.sql('SELECT token FROM sessions')).not.toEqual(sealedBefore);
      } finally {
        await context.close();
      }
    });

    it('stops showing a project within the cache lifetime once the membership is gone', async () => {
      const token = 'glpat-carol-0123456789';
      gitlab().model.addToken({ token, username: 'carol', scopes: ['read_api'] });
      gitlab().model.groups.get('beta')!.members.set('carol', 'reporter');
      const list = async (): Promise<string[]> =>
        ((await (await fetch(`${base}/api/v1/repositories?limit=100`, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: { name: string }[] }).items.map((r) => r.name);
      expect(await list()).toContain(beta.app.repository);
      gitlab().model.groups.get('beta')!.members.delete('carol');
      // TAGTRAIL_ACCESS_CACHE_SECONDS=2 here: polled until the cached answer runs out.
      let names = await list();
      for (let i = 0; i < 200 && names.length > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        names = await list();
      }
      expect(names).toEqual([]);
    });
  });

  describe('the API with a GitLab access token', () => {
    it('answers a valid token, 401 to an invalid one and to none; /healthz stays open', async () => {
      const ok = await fetch(`${base}/api/v1/repositories`, { headers: { authorization: `Bearer ${ALICE_TOKEN}` } });
      expect(ok.status).toBe(200);
      const bad = await fetch(`${base}/api/v1/repositories`, { headers: { authorization: 'Bearer glpat-nobody' } });
      expect(bad.status).toBe(401);
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
      // GitLab's refusal is remembered: the same bad token again costs no second call to GitLab.
      const userCalls = (token: string): number => gitlab().count((r) => r.path === '/api/v4/user' && r.headers.authorization === `Bearer ${token}`);
      const refused = `glpat-refused-${Date.now()}`;
      for (let i = 0; i < 2; i++) expect((await fetch(`${base}/api/v1/repositories`, { headers: { authorization: `Bearer ${refused}` } })).status).toBe(401);
      expect(userCalls(refused)).toBe(1);
      const none = await fetch(`${base}/api/v1/repositories`);
      expect(none.status).toBe(401);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      // The registry webhook keeps its own secret: not the session's or a token's business (off here: 404).
      const hook = await fetch(`${base}/api/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(hook.status).toBe(404);
      expect(((await hook.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
      // /metrics on a loopback --listen is open; the pages and API are not.
      expect((await fetch(`${base}/metrics`)).status).toBe(200);
    });

    it("lends no build details from a referrer only an unreadable repository lists", async () => {
      // alpha's plain image, tagged in beta too; only beta's referrers tag lists a build-details referrer.
      const subject = alpha.plain.digest;
      const referrer = { digest: `sha256:${hex(32)}`, subjectDigest: subject, artifactType: 'application/vnd.tagtrail.build.v1+json', annotations: { 'com.gitlab.ci.pipeline_id': '424242' } };
      await catalog.store.setTag(beta.app.repository, 'alpha-plain', subject, new Date());
      await catalog.store.putReferrer(referrer);
      await catalog.store.setReferrersTag(beta.app.repository, subject, `sha256:${hex(32)}`, [referrer.digest]);
      const res = await fetch(`${base}/api/v1/images/${subject}`, { headers: { authorization: `Bearer ${ALICE_TOKEN}` } });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect((JSON.parse(text) as { referrers: unknown[] }).referrers).toEqual([]);
      expect(text).not.toContain('424242');
      expect(text).not.toContain(referrer.digest);
    });
  });
});
