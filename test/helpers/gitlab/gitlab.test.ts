// The GitLab stand-in answers as GitLab's documentation says: checked with plain fetch.
import { describe, expect, it } from 'vitest';
import { useGitlab } from '../fixtures.js';
import { decodeJwt } from '../token-issuer.js';

const gitlab = useGitlab({
  users: [{ username: 'root', admin: true }],
  tokens: [
    { token: 'reader', username: 'dev', scopes: ['read_api', 'read_registry'] },
    { token: 'registry-only', username: 'dev', scopes: ['read_registry'] },
    { token: 'admin', username: 'root', scopes: ['api', 'read_registry'] },
  ],
  groups: [{ path: 'g', members: { dev: 'reporter' } }],
  projects: [
    { path: 'g/a', repositories: ['', 'x', 'y'] },
    { path: 'g/sub/b', visibility: 'public', repositories: [''] },
    { path: 'other/secret', repositories: [''] },
  ],
  registryHost: 'registry.test:5000',
});

const get = (path: string, token?: string): Promise<Response> => fetch(`${gitlab().url}${path}`, { headers: token ? { 'private-token': token } : {} });

describe('GitLab stand-in: REST', () => {
  it('pages a group listing with Link and the X- headers, capping per_page at 100', async () => {
    const res = await get('/api/v4/groups/g/registry/repositories?per_page=2', 'reader');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([
      expect.objectContaining({ path: 'g/a', name: '', location: 'registry.test:5000/g/a' }),
      expect.objectContaining({ path: 'g/a/x', name: 'x' }),
    ]);
    expect(Object.fromEntries(['x-page', 'x-per-page', 'x-next-page', 'x-prev-page', 'x-total', 'x-total-pages'].map((h) => [h, res.headers.get(h)]))).toEqual({
      'x-page': '1', 'x-per-page': '2', 'x-next-page': '2', 'x-prev-page': '', 'x-total': '4', 'x-total-pages': '2',
    });
    expect(res.headers.get('link')).toContain(`<${gitlab().url}/api/v4/groups/g/registry/repositories?per_page=2&page=2>; rel="next"`);
    const big = await get('/api/v4/groups/g/registry/repositories?per_page=500', 'reader');
    expect(big.headers.get('x-per-page')).toBe('100');
  });

  it('answers 404 for what the caller may not see, 401 for a bad token, 403 without read_api', async () => {
    expect(await (await get('/api/v4/projects/other%2Fsecret/registry/repositories', 'reader')).json()).toEqual({ message: '404 Project Not Found' });
    expect((await get('/api/v4/groups/other/registry/repositories', 'reader')).status).toBe(404);
    expect((await get('/api/v4/projects/g%2Fa', 'nope')).status).toBe(401);
    const scoped = await get('/api/v4/projects/g%2Fa', 'registry-only');
    expect(scoped.status).toBe(403);
    expect(await scoped.json()).toMatchObject({ error: 'insufficient_scope' });
    // Anonymous: the public project only.
    expect((await get('/api/v4/projects/g%2Fsub%2Fb')).status).toBe(200);
    expect((await get('/api/v4/projects/g%2Fa')).status).toBe(404);
  });

  it('answers 429 with Retry-After when rate limited', async () => {
    gitlab().rateLimit(1, 7);
    const res = await get('/api/v4/projects/g%2Fa', 'reader');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect((await get('/api/v4/projects/g%2Fa', 'reader')).status).toBe(200);
  });
});

describe('GitLab stand-in: /jwt/auth', () => {
  const token = async (password: string, scope: string): Promise<{ status: number; access: unknown }> => {
    const url = `${gitlab().realm}?service=${gitlab().service}&scope=${encodeURIComponent(scope)}`;
    const res = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`anyone:${password}`).toString('base64')}` } });
    if (res.status !== 200) return { status: res.status, access: undefined };
    const body = (await res.json()) as { token: string };
    return { status: 200, access: decodeJwt(body.token).claims.access };
  };

  it('grants pull on visible projects to a token with read_registry, and the catalog to an admin only', async () => {
    expect(await token('reader', 'repository:g/a/x:pull')).toEqual({ status: 200, access: [{ type: 'repository', name: 'g/a/x', actions: ['pull'] }] });
    expect(await token('reader', 'repository:other/secret:pull')).toEqual({ status: 200, access: [] });
    expect(await token('reader', 'registry:catalog:*')).toEqual({ status: 200, access: [] });
    expect(await token('admin', 'registry:catalog:*')).toEqual({ status: 200, access: [{ type: 'registry', name: 'catalog', actions: ['*'] }] });
    expect((await token('wrong', 'repository:g/a:pull')).status).toBe(401);
  });
});

describe('GitLab stand-in: OIDC', () => {
  it('publishes its discovery document and keys, and signs ID tokens that verify against them', async () => {
    const { createRemoteJWKSet, jwtVerify } = await import('jose');
    const doc = (await (await fetch(`${gitlab().url}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string; id_token_signing_alg_values_supported: string[] };
    expect(doc.issuer).toBe(gitlab().url);
    expect(doc.jwks_uri).toBe(`${gitlab().url}/oauth/discovery/keys`);
    expect(doc.id_token_signing_alg_values_supported).toEqual(['RS256']);
    const token = await gitlab().issueIdToken({ project: 'g/a', aud: 'https://tagtrail.test', pipelineId: 12, jobId: 34, sha: 'a'.repeat(40), ref: 'main' });
    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(doc.jwks_uri)), { issuer: gitlab().url, audience: 'https://tagtrail.test' });
    expect(protectedHeader.alg).toBe('RS256');
    // One issuer, one key set: the JWKS oidc-provider serves for sign-in is the CI token's key.
    const jwks = (await (await fetch(doc.jwks_uri)).json()) as { keys: { kid: string; d?: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual([protectedHeader.kid]);
    expect(jwks.keys[0]?.d).toBeUndefined();
    expect(payload).toMatchObject({ project_path: 'g/a', pipeline_id: '12', job_id: '34', ref: 'main', ref_type: 'branch', sub: 'project_path:g/a:ref_type:branch:ref:main' });
    expect((payload.exp as number) - (payload.iat as number)).toBe(300);
  });
});
