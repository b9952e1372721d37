// --auth gitlab: people sign in with GitLab through OpenID Connect (authorization code + PKCE,
// state and nonce checked, by openid-client); scripts present a GitLab access token as Bearer.
// Sessions live in the catalog database (every replica sees them) behind a signed cookie; the
// GitLab token a session keeps is encrypted (seal.ts).
//
//   GET  /auth/login?next=PATH   to GitLab's sign-in, then back to PATH (a path on serve only)
//   GET  /auth/callback          the redirect URI: <--public-url>/auth/callback
//   POST /auth/logout            ends the session (form field csrf must match the session's)
//   GET  /auth/signed-out        says so, with a link to sign in again
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, getSignedCookie, setCookie, setSignedCookie } from 'hono/cookie';
import { html } from 'hono/html';
import * as oidc from 'openid-client';
import type { Logger } from 'pino';
import { AuthError } from '../../errors.js';
import type { Sessions } from '../../catalog/store.js';
import { isMachineEndpoint, isProbe } from './paths.js';
import type { People, Person } from './people.js';
import { type Keys, openTokens, openTransaction, sealTokens, sealTransaction, sha256 } from './seal.js';

/** GitLab's OpenID Connect scopes: openid for the ID token, read_api for the projects list (https://docs.gitlab.com/integration/openid_connect_provider/). */
const SIGN_IN_SCOPES = 'openid read_api';
const SESSION_HOURS = 12;
const TRANSACTION_SECONDS = 600;
const TRANSACTION_COOKIE = 'tagtrail_signin';

interface SignInOptions {
  /** The first --gitlab-url: the OpenID Connect issuer. */
  gitlabUrl: URL;
  clientId: string;
  clientSecret: string;
  publicUrl: URL;
  keys: Keys;
  sessions: Sessions;
  people: People;
  fetch: typeof fetch;
  now: () => Date;
  logger?: Logger;
}

/** A path on serve itself, or '/': never a URL to elsewhere (//host, /\host, schemes, controls). */
function ownPath(value: string | undefined): string {
  if (value === undefined || value.length > 2048 || !value.startsWith('/') || value.startsWith('//') || value.includes('\\')) return '/';
  if ([...value].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) return '/';
  const base = new URL('http://serve.invalid');
  const u = new URL(value, base);
  if (u.origin !== base.origin || u.pathname.startsWith('/auth/')) return '/';
  return `${u.pathname}${u.search}`;
}

function bearerOf(header: string | undefined): string | undefined {
  const m = /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(header ?? '');
  return m?.[1];
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function unauthorized(c: Context, message: string): Response {
  c.header('www-authenticate', 'Bearer realm="tagtrail"');
  c.header('cache-control', 'no-store');
  return c.json({ error: { code: 'UNAUTHORIZED', message } }, 401);
}

function page(c: Context, status: number, title: string, body: ReturnType<typeof html>): Response | Promise<Response> {
  const doc = html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title} · tagtrail</title><link rel="icon" href="data:,"></head><body><main><h1>${title}</h1>${body}</main></body></html>`;
  return c.html(doc, status as 200, {
    'Content-Security-Policy': "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
  });
}

export function gitlabSignIn(options: SignInOptions): { routes: (app: Hono) => void; guard: MiddlewareHandler } {
  const secure = options.publicUrl.protocol === 'https:';
  // __Host-: only ever set by this origin over https, for every path (RFC 6265bis §4.1.3.2).
  const sessionCookie = secure ? { name: 'tagtrail_session', prefix: 'host' as const } : { name: 'tagtrail_session' };
  const redirectUri = new URL('/auth/callback', options.publicUrl);
  const log = options.logger;

  let config: Promise<oidc.Configuration> | undefined;
  const configuration = (): Promise<oidc.Configuration> => {
    config ??= oidc
      .discovery(options.gitlabUrl, options.clientId, { redirect_uris: [redirectUri.href], response_types: ['code'] }, oidc.ClientSecretBasic(options.clientSecret), {
        [oidc.customFetch]: options.fetch as oidc.CustomFetch,
        // checkGitlabUrl allows plain http only on a loopback host.
        ...(options.gitlabUrl.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
      })
      .catch((err: unknown) => {
        config = undefined;
        throw err;
      });
    return config;
  };

  const readSession = async (c: Context) => {
    const raw = await getSignedCookie(c, options.keys.cookie, sessionCookie.name, ...(secure ? (['host'] as const) : ([] as const)));
    if (typeof raw !== 'string' || raw === '') return undefined;
    const id = sha256(raw);
    const session = await options.sessions.findSession(id, options.now());
    return session ? { id, session } : undefined;
  };

  const routes = (app: Hono): void => {
    app.get('/auth/login', async (c) => {
      const cfg = await configuration();
      const verifier = oidc.randomPKCECodeVerifier();
      const t = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier, next: ownPath(c.req.query('next')) };
      const url = oidc.buildAuthorizationUrl(cfg, {
        redirect_uri: redirectUri.href,
        scope: SIGN_IN_SCOPES,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state: t.state,
        nonce: t.nonce,
      });
      setCookie(c, TRANSACTION_COOKIE, await sealTransaction(options.keys, t, options.now(), TRANSACTION_SECONDS), { path: '/auth/', httpOnly: true, sameSite: 'Lax', secure, maxAge: TRANSACTION_SECONDS });
      c.header('cache-control', 'no-store');
      return c.redirect(url.href, 302);
    });

    app.get('/auth/callback', async (c) => {
      const sealed = getCookie(c, TRANSACTION_COOKIE);
      deleteCookie(c, TRANSACTION_COOKIE, { path: '/auth/', secure });
      const t = sealed ? await openTransaction(options.keys, sealed, options.now()) : undefined;
      const again = html`<p><a href="/auth/login">Sign in again</a></p>`;
      if (!t) return page(c, 400, 'Sign-in expired', html`<p>The sign-in took too long or was started elsewhere.</p>${again}`);
      let accessToken: string;
      let refreshToken: string | undefined;
      let subject: string;
      let username: string;
      try {
        const cfg = await configuration();
        const current = new URL(`${redirectUri.pathname}${new URL(c.req.url).search}`, options.publicUrl);
        const tokens = await oidc.authorizationCodeGrant(cfg, current, { pkceCodeVerifier: t.verifier, expectedState: t.state, expectedNonce: t.nonce, idTokenExpected: true });
        const claims = tokens.claims();
        if (!claims) throw new Error('no ID token');
        accessToken = tokens.access_token;
        refreshToken = tokens.refresh_token;
        subject = claims.sub;
        // GitLab gives the username (nickname) in userinfo only, not in the ID token.
        const info = await oidc.fetchUserInfo(cfg, accessToken, subject);
        username = typeof info.nickname === 'string' ? info.nickname : (await options.people.resolve(accessToken)).username;
      } catch (err) {
        log?.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, 'sign-in failed');
        return page(c, 400, 'Sign-in did not complete', html`<p>GitLab's answer could not be verified.</p>${again}`);
      }
      const secret = randomBytes(32).toString('base64url');
      const now = options.now();
      await options.sessions.putSession({
        id: sha256(secret),
        subject,
        username,
        token: await sealTokens(options.keys, { access: accessToken, ...(refreshToken !== undefined ? { refresh: refreshToken } : {}) }),
        csrf: randomBytes(24).toString('base64url'),
        createdAt: now,
        expiresAt: new Date(now.getTime() + SESSION_HOURS * 3600_000),
      });
      await setSignedCookie(c, sessionCookie.name, secret, options.keys.cookie, { path: '/', httpOnly: true, sameSite: 'Lax', secure, maxAge: SESSION_HOURS * 3600, ...(secure ? { prefix: 'host' } : {}) });
      log?.info({ user: username }, 'signed in');
      c.header('cache-control', 'no-store');
      return c.redirect(ownPath(t.next), 302);
    });

    app.post('/auth/logout', async (c) => {
      const found = await readSession(c);
      const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
      const csrf = typeof form.csrf === 'string' ? form.csrf : '';
      if (!found || !sameText(csrf, found.session.csrf)) return page(c, 403, 'Cannot sign out', html`<p>This sign-out form is out of date. <a href="/">Reload a page</a> and try again.</p>`);
      await options.sessions.deleteSession(found.id, options.now());
      deleteCookie(c, sessionCookie.name, { path: '/', secure, ...(secure ? { prefix: 'host' } : {}) });
      return c.redirect('/auth/signed-out', 303);
    });

    app.get('/auth/signed-out', (c) => page(c, 200, 'Signed out', html`<p>You are signed out of tagtrail.</p><p><a href="/auth/login">Sign in</a></p>`));
  };

  /** The session's person; an expired GitLab access token is renewed once with the refresh token. */
  const sessionPerson = async (id: string, sealed: string): Promise<Person | undefined> => {
    const tokens = await openTokens(options.keys, sealed);
    if (!tokens) return undefined;
    try {
      return await options.people.resolve(tokens.access);
    } catch (err) {
      if (!(err instanceof AuthError) || tokens.refresh === undefined) throw err;
    }
    let renewed: oidc.TokenEndpointResponse;
    try {
      renewed = await oidc.refreshTokenGrant(await configuration(), tokens.refresh);
    } catch (err) {
      // Refused (revoked, or already used by another replica): the person signs in again.
      log?.info({ err: { message: err instanceof Error ? err.message : String(err) } }, 'session token not renewed');
      return undefined;
    }
    await options.sessions.setSessionToken(id, await sealTokens(options.keys, { access: renewed.access_token, refresh: renewed.refresh_token ?? tokens.refresh }));
    return options.people.resolve(renewed.access_token);
  };

  const guard: MiddlewareHandler = async (c, next) => {
    const path = c.req.path;
    if (isProbe(path) || path === '/metrics' || path.startsWith('/auth/') || path.startsWith('/assets/') || isMachineEndpoint(c.req.method, path)) return next();
    const api = path.startsWith('/api/');
    const bearer = bearerOf(c.req.header('authorization'));
    try {
      if (bearer !== undefined) {
        const person = await options.people.resolve(bearer);
        c.set('viewer', { username: person.username, scope: person.scope });
        return next();
      }
      const found = await readSession(c);
      const person = found ? await sessionPerson(found.id, found.session.token) : undefined;
      if (found && person) {
        c.set('viewer', { username: found.session.username, scope: person.scope, csrf: found.session.csrf });
        return next();
      }
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      if (bearer !== undefined || api) return unauthorized(c, 'GitLab does not accept this token, or it lacks the read_api scope');
      // The session's GitLab token no longer works: sign in again.
    }
    if (api || bearer !== undefined || (c.req.method !== 'GET' && c.req.method !== 'HEAD')) {
      return unauthorized(c, 'sign in, or send a GitLab access token with the read_api scope as Authorization: Bearer');
    }
    c.header('cache-control', 'no-store');
    return c.redirect(`/auth/login?next=${encodeURIComponent(ownPath(`${path}${new URL(c.req.url).search}`))}`, 302);
  };

  return { routes, guard };
}
