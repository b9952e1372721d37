// Transport behaviour that a real registry will not show on demand: scripted answers through an
// injected fetch. The same behaviours are exercised end to end through the fault proxy.
import { describe, expect, it } from 'vitest';
import { AuthError, NetworkError, NotFoundError, RegistryError, exitCodeFor } from '../errors.js';
import { credentialResolver } from './auth/credentials.js';
import { pushScope } from './auth/token.js';
import { Transport, parseRetryAfter } from './transport.js';

type Handler = (url: URL, init: RequestInit) => Response | Promise<Response>;

function scripted(handler: Handler) {
  const calls: { url: string; method: string; authorization?: string }[] = [];
  const f = (async (input: string | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const headers = new Headers(init.headers);
    calls.push({ url: url.toString(), method: init.method ?? 'GET', ...(headers.get('authorization') ? { authorization: headers.get('authorization') as string } : {}) });
    return handler(url, init);
  }) as typeof fetch;
  return { fetch: f, calls };
}

function transport(f: typeof fetch, extra: { creds?: boolean; debug?: string[]; trustedRealmHosts?: string[]; registries?: string[] } = {}) {
  const sleeps: number[] = [];
  const t = new Transport({
    fetch: f,
    credentials: credentialResolver({ env: extra.creds ? { TAGTRAIL_REGISTRY_USER: 'user', TAGTRAIL_REGISTRY_PASSWORD: 's3cret-pass' } : {}, registries: extra.registries ?? ['reg.example.com'] }),
    // The realm of these tests, auth.example.com, is another host than the registry's: trusted on purpose.
    trustedRealmHosts: extra.trustedRealmHosts ?? ['auth.example.com'],
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    ...(extra.debug ? { debug: (l: string) => extra.debug?.push(l) } : {}),
  });
  return { t, sleeps };
}

const ok = () => new Response('{}', { status: 200 });

describe('Transport retries', () => {
  it('honours Retry-After on 429, capped', async () => {
    let n = 0;
    const s = scripted((u) => {
      if (u.pathname === '/v2/') return ok();
      n++;
      return n === 1 ? new Response('', { status: 429, headers: { 'retry-after': '3600' } }) : n === 2 ? new Response('', { status: 503, headers: { 'retry-after': '2' } }) : ok();
    });
    const { t, sleeps } = transport(s.fetch);
    const res = await t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/a/tags/list' });
    expect(res.status).toBe(200);
    expect(sleeps).toEqual([30_000, 2_000]);
  });

  it('retries 502/504/408 and connection resets, and gives up with a NetworkError', async () => {
    const s = scripted((u) => {
      if (u.pathname === '/v2/') return ok();
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } });
    });
    const { t, sleeps } = transport(s.fetch);
    await expect(t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/a/tags/list' })).rejects.toBeInstanceOf(NetworkError);
    expect(sleeps.length).toBe(4);
    expect(sleeps[1]).toBeGreaterThan(sleeps[0] as number);
  });

  it('sends a POST once when its connection breaks (the registry may have acted on it), and only again when the registry said it did not act', async () => {
    const reset = () => {
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } });
    };
    const post = { registry: 'reg.example.com', method: 'POST', path: '/v2/a/blobs/uploads/' } as const;
    const broken = scripted((u) => (u.pathname === '/v2/' ? ok() : reset()));
    const b = transport(broken.fetch);
    await expect(b.t.request(post)).rejects.toBeInstanceOf(NetworkError);
    expect(broken.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
    expect(b.sleeps).toEqual([]);
    // A PUT, idempotent, is sent again after the same break.
    let puts = 0;
    const put = scripted((u, init) => (u.pathname === '/v2/' ? ok() : init.method === 'PUT' && ++puts === 1 ? reset() : new Response('', { status: 201 })));
    expect((await transport(put.fetch).t.request({ registry: 'reg.example.com', method: 'PUT', path: '/v2/a/manifests/v1', body: new Uint8Array([1]) })).status).toBe(201);
    expect(puts).toBe(2);
    // A gateway's 502 cannot tell whether the registry behind it acted: the POST fails with it.
    const gateway = scripted((u) => (u.pathname === '/v2/' ? ok() : new Response('', { status: 502 })));
    await expect(transport(gateway.fetch).t.request(post)).rejects.toMatchObject({ status: 502 });
    expect(gateway.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
    // A 503 says the registry did not act: the POST goes again.
    let posts = 0;
    const busy = scripted((u) => (u.pathname === '/v2/' ? ok() : ++posts === 1 ? new Response('', { status: 503 }) : new Response('', { status: 202 })));
    expect((await transport(busy.fetch).t.request({ ...post, accept: [202] })).status).toBe(202);
    expect(posts).toBe(2);
  });

  it('does not retry other 4xx', async () => {
    const s = scripted((u) => (u.pathname === '/v2/' ? ok() : new Response('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', { status: 404 })));
    const { t, sleeps } = transport(s.fetch);
    await expect(t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/a/manifests/x' })).rejects.toBeInstanceOf(NotFoundError);
    const s2 = scripted((u) => (u.pathname === '/v2/' ? ok() : new Response('', { status: 400 })));
    await expect(transport(s2.fetch).t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/a/manifests/x' })).rejects.toBeInstanceOf(RegistryError);
    expect(sleeps).toEqual([]);
    expect(s2.calls.length).toBe(2);
  });

  it('parses Retry-After dates', () => {
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter('junk', 0)).toBeUndefined();
  });
});

describe('Transport auth', () => {
  const challenge = 'Bearer realm="https://auth.example.com/jwt/auth",service="container_registry"';

  it('fetches a token with Basic credentials, caches it per scope, and re-authenticates once on 401', async () => {
    let tokens = 0;
    let rejectNext = true;
    const s = scripted((u, init) => {
      const authz = new Headers(init.headers).get('authorization') ?? '';
      if (u.host === 'auth.example.com') {
        expect(authz).toBe(`Basic ${Buffer.from('user:s3cret-pass').toString('base64')}`);
        expect(u.searchParams.get('scope')).toBe('repository:g/app:pull,push');
        tokens++;
        return new Response(JSON.stringify({ token: `tok-${tokens}`, expires_in: 300 }), { status: 200 });
      }
      if (!authz.startsWith('Bearer ')) return new Response('', { status: 401, headers: { 'www-authenticate': challenge } });
      if (authz === 'Bearer tok-1' && u.pathname.endsWith('/x') && rejectNext) {
        rejectNext = false;
        return new Response('', { status: 401, headers: { 'www-authenticate': `${challenge},error="invalid_token"` } });
      }
      return ok();
    });
    const debug: string[] = [];
    const { t } = transport(s.fetch, { creds: true, debug });
    await t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/manifests/a', scope: pushScope('g/app') });
    await t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/manifests/b', scope: pushScope('g/app') });
    expect(tokens).toBe(1);
    await t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/manifests/x', scope: pushScope('g/app') });
    expect(tokens).toBe(2);
    const log = debug.join('\n');
    expect(log).not.toContain('tok-');
    expect(log).not.toContain('s3cret');
    expect(log).not.toContain(Buffer.from('user:s3cret-pass').toString('base64'));
  });

  it('reports refused credentials as an AuthError', async () => {
    const s = scripted((u) => {
      if (u.host === 'auth.example.com') return new Response('', { status: 401 });
      return new Response('', { status: 401, headers: { 'www-authenticate': challenge } });
    });
    const err = await transport(s.fetch, { creds: true }).t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/manifests/a', scope: pushScope('g/app') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(exitCodeFor(err as AuthError)).toBe(1);
    expect((err as Error).message).toContain('TAGTRAIL_REGISTRY_USER');
    expect((err as Error).message).not.toContain('s3cret');
  });

  it('refuses an http realm for an https registry, and link-local realms', async () => {
    for (const realm of ['http://auth.example.com/jwt', 'https://169.254.169.254/token']) {
      const s = scripted(() => new Response('', { status: 401, headers: { 'www-authenticate': `Bearer realm="${realm}"` } }));
      const err = await transport(s.fetch, { creds: true }).t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/tags/list', scope: pushScope('g/app') }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthError);
      expect(s.calls.every((c) => !c.url.includes(new URL(realm).host) || c.authorization === undefined)).toBe(true);
      expect(s.calls.length).toBe(1);
    }
  });

  it('sends Basic credentials only to a realm on the registry\'s host name or a trusted one, and nothing to any other', async () => {
    const basic = `Basic ${Buffer.from('user:s3cret-pass').toString('base64')}`;
    const scriptFor = (realm: string) =>
      scripted((u, init) => {
        const authz = new Headers(init.headers).get('authorization') ?? '';
        if (u.pathname.endsWith('/token')) return new Response(JSON.stringify({ token: 'tok' }), { status: 200 });
        if (authz === 'Bearer tok') return ok();
        return new Response('', { status: 401, headers: { 'www-authenticate': `Bearer realm="${realm}",service="svc"` } });
      });
    const pull = { registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/tags/list', scope: pushScope('g/app') } as const;
    // Another host: refused, naming it, before anything is sent there.
    const probe = scriptFor('https://probe.example.net/token');
    const err = await transport(probe.fetch, { creds: true }).t.request(pull).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(exitCodeFor(err as AuthError)).toBe(1);
    expect((err as Error).message).toContain('probe.example.net');
    expect((err as AuthError).hint).toContain('--trusted-realm-host probe.example.net');
    expect(probe.calls.filter((c) => c.url.includes('probe.example.net'))).toEqual([]);
    // The same host name on another port (GitLab's /jwt/auth beside a registry on :5050): allowed.
    const samePort = scriptFor('https://reg.example.com:8443/token');
    await transport(samePort.fetch, { creds: true, registries: ['reg.example.com:5050'] }).t.request({ ...pull, registry: 'reg.example.com:5050' });
    expect(samePort.calls.find((c) => c.url.startsWith('https://reg.example.com:8443/token'))?.authorization).toBe(basic);
    // Named with --trusted-realm-host: allowed.
    const trusted = scriptFor('https://probe.example.net/token');
    await transport(trusted.fetch, { creds: true, trustedRealmHosts: ['probe.example.net'] }).t.request(pull);
    expect(trusted.calls.find((c) => c.url.includes('probe.example.net'))?.authorization).toBe(basic);
    // Without credentials, an anonymous token request carries nothing, wherever the realm is.
    const anonymous = scriptFor('https://probe.example.net/token');
    await transport(anonymous.fetch).t.request(pull);
    expect(anonymous.calls.find((c) => c.url.includes('probe.example.net'))?.authorization).toBeUndefined();
    // registry.gitlab.com's token service is gitlab.com, by design: known without configuration.
    const gitlab = scriptFor('https://gitlab.com/jwt/auth/token');
    await transport(gitlab.fetch, { creds: true, trustedRealmHosts: [], registries: ['registry.gitlab.com'] }).t.request({ ...pull, registry: 'registry.gitlab.com' });
    expect(gitlab.calls.find((c) => c.url.startsWith('https://gitlab.com/'))?.authorization).toBe(basic);
  });

  it('sends a Bearer token only to the registry whose challenge obtained it', async () => {
    let issued = 0;
    const s = scripted((u, init) => {
      const authz = new Headers(init.headers).get('authorization') ?? '';
      if (u.host === 'auth.example.com') return new Response(JSON.stringify({ token: `tok-${++issued}` }), { status: 200 });
      if (authz.startsWith('Bearer ')) return ok();
      return new Response('', { status: 401, headers: { 'www-authenticate': challenge } });
    });
    const { t } = transport(s.fetch);
    await t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/tags/list', scope: pushScope('g/app') });
    await t.request({ registry: 'other.example.com', method: 'GET', path: '/v2/g/app/tags/list', scope: pushScope('g/app') });
    const sent = (host: string) => s.calls.filter((c) => c.url.startsWith(`https://${host}/v2/g/`)).map((c) => c.authorization);
    // The first request to each goes without credentials: its 401 is the challenge.
    expect(sent('reg.example.com')).toEqual([undefined, 'Bearer tok-1']);
    expect(sent('other.example.com')).toEqual([undefined, 'Bearer tok-2']);
  });

  it('never sends credentials across a redirect to another origin', async () => {
    const s = scripted((u, init) => {
      const anonymous = !new Headers(init.headers).has('authorization');
      if (u.host === 'reg.example.com' && anonymous) return new Response('', { status: 401, headers: { 'www-authenticate': 'Basic realm="r"' } });
      if (u.host === 'reg.example.com') return new Response('', { status: 307, headers: { location: 'https://storage.example.net/blob?X-Amz-Signature=abc' } });
      return ok();
    });
    const debug: string[] = [];
    await transport(s.fetch, { creds: true, debug }).t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/blobs/sha256:x' });
    const storage = s.calls.find((c) => c.url.includes('storage.example.net'));
    expect(storage).toBeDefined();
    expect(storage?.authorization).toBeUndefined();
    // The first request went without credentials and was challenged; the second carried them.
    expect(s.calls.filter((c) => c.url.includes('reg.example.com/v2/g')).map((c) => c.authorization?.split(' ')[0])).toEqual([undefined, 'Basic']);
    expect(debug.join('\n')).not.toContain('X-Amz-Signature=abc');
  });
});

describe('Transport learning how to authenticate', () => {
  const challenge = 'Bearer realm="https://auth.example.com/token",service="reg"';
  const bearerRegistry = () => {
    let issued = 0;
    return scripted(async (u, init) => {
      if (u.host === 'auth.example.com') return new Response(JSON.stringify({ token: `tok-${++issued}` }), { status: 200 });
      if (new Headers(init.headers).get('authorization')?.startsWith('Bearer ')) return ok();
      return new Response('', { status: 401, headers: { 'www-authenticate': challenge } });
    });
  };

  it('takes the challenge from the first GET itself, with no GET /v2/, and makes requests sent meanwhile wait for it', async () => {
    const s = bearerRegistry();
    const { t } = transport(s.fetch);
    const get = (path: string) => t.request({ registry: 'reg.example.com', method: 'GET', path, scope: pushScope('g/app') });
    await Promise.all([get('/v2/g/app/manifests/v1'), get('/v2/g/app/manifests/v2'), get('/v2/g/app/tags/list')]);
    expect(s.calls.filter((c) => new URL(c.url).pathname === '/v2/')).toEqual([]);
    // One unauthenticated request (the first), one token, three requests with it.
    expect(s.calls.filter((c) => c.url.startsWith('https://reg.example.com/') && c.authorization === undefined).length).toBe(1);
    expect(s.calls.filter((c) => c.url.startsWith('https://auth.example.com/')).length).toBe(1);
    expect(s.calls.filter((c) => c.authorization === 'Bearer tok-1').length).toBe(3);
  });

  it('still pings GET /v2/ before a first request that is not a GET or HEAD, so its body goes out once', async () => {
    const s = bearerRegistry();
    const { t } = transport(s.fetch);
    await t.request({ registry: 'reg.example.com', method: 'PUT', path: '/v2/g/app/manifests/v1', body: new Uint8Array([1]), scope: pushScope('g/app') });
    expect(s.calls.map((c) => `${c.method} ${new URL(c.url).host}${new URL(c.url).pathname}`)).toEqual(['GET reg.example.com/v2/', 'GET auth.example.com/token', 'PUT reg.example.com/v2/g/app/manifests/v1']);
  });

  it('asks GET /v2/ when the first request fails, to tell a host that is no registry from a missing manifest', async () => {
    const notRegistry = scripted(() => new Response('', { status: 404 }));
    const err = await transport(notRegistry.fetch)
      .t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/manifests/v1' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as Error).message).toContain('does not answer the registry API');
    const missing = scripted((u) => (u.pathname === '/v2/' ? ok() : new Response('', { status: 404 })));
    await expect(transport(missing.fetch).t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/manifests/v1' })).rejects.toBeInstanceOf(NotFoundError);
    expect(missing.calls.map((c) => new URL(c.url).pathname)).toEqual(['/v2/g/app/manifests/v1', '/v2/']);
  });

  it('stops a request and its retries when its signal aborts', async () => {
    const s = scripted(() => new Response('', { status: 503 }));
    const controller = new AbortController();
    const t = new Transport({
      fetch: s.fetch,
      credentials: credentialResolver({ env: {}, registries: ['reg.example.com'] }),
      // The first wait between retries is where the caller gives up.
      sleep: async () => {
        controller.abort(new Error('no longer needed'));
      },
    });
    await expect(t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/g/app/tags/list', signal: controller.signal })).rejects.toThrow('no longer needed');
    expect(s.calls.length).toBe(1);
  });
});

describe('Transport learning how to authenticate from a HEAD that may answer 404', () => {
  it('a first HEAD answered 404 without credentials does not settle that the registry takes none', async () => {
    // A registry that hides private repositories from anonymous clients: 404, not 401. Its /v2/
    // asks for a token, as every token-auth registry's does.
    const s = scripted((u, init) => {
      if (u.host === 'auth.example.com') return new Response(JSON.stringify({ token: 'tok' }), { status: 200 });
      const bearer = new Headers(init.headers).get('authorization') === 'Bearer tok';
      if (u.pathname === '/v2/' && !bearer) return new Response('', { status: 401, headers: { 'www-authenticate': 'Bearer realm="https://auth.example.com/token",service="reg"' } });
      return bearer ? ok() : new Response('', { status: 404 });
    });
    const { t } = transport(s.fetch, { creds: true });
    const head = await t.request({ registry: 'reg.example.com', method: 'HEAD', path: '/v2/private/app/manifests/v1', scope: pushScope('private/app'), accept: [404] });
    expect(head.status).toBe(200);
  });
});

describe('Transport probing with an abortable first request', () => {
  it('a request waiting on a first GET that its caller aborts does not fail with that abort: it probes again itself', async () => {
    let first = true;
    const s = scripted((_u, init) => {
      if (first) {
        first = false;
        // The probe: never answered until its caller gives up.
        return new Promise<Response>((_resolve, reject) => init.signal?.addEventListener('abort', () => reject(init.signal?.reason)));
      }
      return ok();
    });
    const { t } = transport(s.fetch);
    const stop = new AbortController();
    const reason = new Error('the caller stopped');
    const probing = t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/a/tags/list', signal: stop.signal });
    const waiting = t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/a/manifests/v1' });
    await new Promise((r) => setTimeout(r, 0));
    stop.abort(reason);
    await expect(probing).rejects.toBe(reason);
    expect((await waiting).status).toBe(200);
    expect(s.calls.map((c) => new URL(c.url).pathname)).toEqual(['/v2/a/tags/list', '/v2/a/manifests/v1']);
  });

  it('the default wait between retries ends with the signal\'s own reason', async () => {
    const s = scripted((u) => (u.pathname === '/v2/' ? ok() : new Response('', { status: 503 })));
    const t = new Transport({ fetch: s.fetch, credentials: credentialResolver({ env: {}, registries: [] }), retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 }, random: () => 0.5 });
    const stop = new AbortController();
    const reason = new Error('the caller stopped');
    const pending = t.request({ registry: 'reg.example.com', method: 'GET', path: '/v2/a/tags/list', signal: stop.signal });
    while (s.calls.filter((c) => c.url.endsWith('/tags/list')).length === 0) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setTimeout(r, 5));
    stop.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });
});
