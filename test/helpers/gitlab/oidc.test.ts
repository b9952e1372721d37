// The GitLab stand-in as OpenID Connect provider and its projects listing, checked with plain
// fetch against GitLab's documentation; and serve's sign-in start over https (Secure cookie).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/server/app.js';
import { openStore } from '../../../src/catalog/open.js';
import type { Store } from '../../../src/catalog/store.js';
import { accessSetup } from '../../../src/server/auth/setup.js';
import { accessSettings } from '../../../src/server/auth/settings.js';
import { type GitlabStandIn, startGitlab } from './server.js';

let gitlab: GitlabStandIn;
let store: Store;
beforeAll(async () => {
  gitlab = await startGitlab({
    tokens: [{ token: 'dev-token', username: 'dev', scopes: ['read_api'] }],
    groups: [{ path: 'g', members: { dev: 'reporter' } }, { path: 'h', members: { dev: 'guest' } }],
    projects: [{ path: 'g/a' }, { path: 'g/b' }, { path: 'g/c', visibility: 'public' }, { path: 'h/x' }, { path: 'other/p', members: { dev: 'maintainer' } }],
    oidcClients: [{ clientId: 'app', clientSecret: 'app-secret-0123456789', redirectUris: ['https://tagtrail.example.com/auth/callback'] }],
  });
  store = await openStore('sqlite::memory:');
});
afterAll(async () => {
  await gitlab?.stop();
  await store?.close();
});

describe('GitLab stand-in: OpenID Connect and projects', () => {
  it('publishes discovery on its own origin with GitLab paths, code flow and S256 (https://docs.gitlab.com/integration/openid_connect_provider/)', async () => {
    const res = await fetch(`${gitlab.url}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc).toMatchObject({
      issuer: gitlab.url,
      authorization_endpoint: `${gitlab.url}/oauth/authorize`,
      token_endpoint: `${gitlab.url}/oauth/token`,
      userinfo_endpoint: `${gitlab.url}/oauth/userinfo`,
      jwks_uri: `${gitlab.url}/oauth/discovery/keys`,
    });
    expect(doc.scopes_supported).toEqual(expect.arrayContaining(['openid', 'read_api']));
    expect(doc.code_challenge_methods_supported).toContain('S256');
    expect(doc.claims_supported).toEqual(expect.arrayContaining(['sub', 'nickname']));
  });

  it('lists projects by min_access_level with offset pagination (https://docs.gitlab.com/api/projects/#list-all-projects)', async () => {
    const get = (q: string): Promise<Response> => fetch(`${gitlab.url}/api/v4/projects?${q}`, { headers: { authorization: 'Bearer dev-token' } });
    const first = await get('min_access_level=20&simple=true&per_page=2');
    expect(first.status).toBe(200);
    expect(((await first.json()) as { path_with_namespace: string }[]).map((p) => p.path_with_namespace)).toEqual(['g/a', 'g/b']);
    expect(first.headers.get('x-total')).toBe('4');
    expect(first.headers.get('x-next-page')).toBe('2');
    expect(first.headers.get('link')).toContain('rel="next"');
    const second = await get('min_access_level=20&simple=true&per_page=2&page=2');
    // g/c through the group; other/p directly; h/x only as Guest, below Reporter.
    expect(((await second.json()) as { path_with_namespace: string }[]).map((p) => p.path_with_namespace)).toEqual(['g/c', 'other/p']);
    expect(second.headers.get('x-next-page')).toBe('');
    expect((await fetch(`${gitlab.url}/api/v4/projects?min_access_level=20`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
  });
});

describe('sign-in start over https', () => {
  it('sends the browser to GitLab with a Secure, HttpOnly, SameSite=Lax transaction cookie', async () => {
    const settings = accessSettings({ auth: 'gitlab', publicUrl: 'https://tagtrail.example.com', listenHostname: '127.0.0.1' });
    const env = { TAGTRAIL_OAUTH_CLIENT_ID: 'app', TAGTRAIL_OAUTH_CLIENT_SECRET: 'app-secret-0123456789', TAGTRAIL_SESSION_SECRET: 'x'.repeat(40) };
    const { guards, routes } = accessSetup(settings, { env, fetch, now: () => new Date(), sessions: store, gitlabUrl: gitlab.url, discovery: false });
    const app = createApp({ store, guards, ...(routes ? { routes } : {}) });
    const res = await app.request('https://tagtrail.example.com/auth/login?next=/r/g/a', { headers: { host: 'tagtrail.example.com' } });
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get('location')!).origin).toBe(gitlab.url);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^tagtrail_signin=/);
    expect(cookie).toContain('Secure');
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Lax');
    // Without a session, a page goes to sign-in and the API answers 401.
    const page = await app.request('https://tagtrail.example.com/insights', { headers: { host: 'tagtrail.example.com' } });
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe('/auth/login?next=%2Finsights');
    expect((await app.request('https://tagtrail.example.com/api/v1/images', { headers: { host: 'tagtrail.example.com' } })).status).toBe(401);
  });

  it('refuses --auth gitlab without its settings, naming what is missing', () => {
    const settings = accessSettings({ auth: 'gitlab', publicUrl: 'https://tagtrail.example.com', listenHostname: '0.0.0.0' });
    const base = { fetch, now: () => new Date(), sessions: store, gitlabUrl: gitlab.url, discovery: false };
    expect(() => accessSetup(settings, { ...base, env: {} })).toThrow(/TAGTRAIL_OAUTH_CLIENT_ID/);
    expect(() => accessSetup(settings, { ...base, env: { TAGTRAIL_OAUTH_CLIENT_ID: 'a', TAGTRAIL_OAUTH_CLIENT_SECRET: 'b', TAGTRAIL_SESSION_SECRET: 'short' } })).toThrow(/at least 32/);
    expect(() => accessSetup(accessSettings({ auth: 'gitlab', listenHostname: '127.0.0.1' }), { ...base, env: {} })).toThrow(/--public-url/);
    expect(() => accessSetup(settings, { ...base, gitlabUrl: 'http://gitlab.example.com', env: { TAGTRAIL_OAUTH_CLIENT_ID: 'a', TAGTRAIL_OAUTH_CLIENT_SECRET: 'b', TAGTRAIL_SESSION_SECRET: 'x'.repeat(40) } })).toThrow(/only https/);
  });
});
