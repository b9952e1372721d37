// The token issuer and a registry in auth.token mode work together the way GitLab's do.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useRegistry, useTempDir, useTokenIssuer } from './fixtures.js';
import { curlManifest, makeImage, MEDIA, pushImage, skopeoInspectRaw } from './images.js';
import { startRegistry } from './registry.js';
import { decodeJwt, DISTRIBUTION_LEEWAY_SECONDS, startTokenIssuer, type TokenIssuer } from './token-issuer.js';

const USER = 'gitlab-ci-token';
const PASSWORD = 'job-token-123';
const CREDS = `${USER}:${PASSWORD}`;

const tmp = useTempDir('token-test');
const issuer = useTokenIssuer({
  users: {
    [USER]: { password: PASSWORD },
    reader: { password: 'reader-pass', access: () => ['pull'] },
    crawler: { password: 'crawler-pass', access: () => ['pull'], catalog: true },
  },
  publicRepositories: (repo) => repo.startsWith('public/'),
});
const registry = useRegistry(() => ({ auth: { tokenIssuer: issuer() } }));

async function token(iss: TokenIssuer, scopes: string[], basic?: string): Promise<Response> {
  const url = new URL(iss.realm);
  url.searchParams.set('service', iss.service);
  for (const s of scopes) url.searchParams.append('scope', s);
  return fetch(url, basic ? { headers: { authorization: `Basic ${Buffer.from(basic).toString('base64')}` } } : {});
}

describe('token issuer', () => {
  it('grants only the allowed actions, signs RS256 with a libtrust kid, and records requests without passwords', async () => {
    const before = issuer().issued();
    const res = await token(issuer(), ['repository:group/app:pull,push', 'repository:other/x:pull', 'registry:catalog:*'], 'reader:reader-pass');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    expect(Number.isNaN(Date.parse(body.issued_at))).toBe(false);
    const { header, claims } = decodeJwt(body.token);
    expect(header).toEqual({ typ: 'JWT', alg: 'RS256', kid: issuer().keyId });
    expect(issuer().keyId).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    expect(claims).toMatchObject({
      iss: issuer().issuer,
      sub: 'reader',
      aud: issuer().service,
      access: [
        { type: 'repository', name: 'group/app', actions: ['pull'] },
        { type: 'repository', name: 'other/x', actions: ['pull'] },
      ],
    });
    const c = claims as { iat: number; nbf: number; exp: number; jti: string };
    expect(c.exp).toBeGreaterThanOrEqual(c.iat + 300 - DISTRIBUTION_LEEWAY_SECONDS);
    expect(c.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(issuer().issued()).toBe(before + 1);
    const record = issuer().requests.at(-1);
    expect(record).toMatchObject({ user: 'reader', status: 200, scopes: ['repository:group/app:pull,push', 'repository:other/x:pull', 'registry:catalog:*'] });
    expect(JSON.stringify(issuer().requests)).not.toContain('reader-pass');
  });

  it('answers 401 to bad credentials, and grants anonymous pull on public repositories only', async () => {
    const before = issuer().issued();
    expect((await token(issuer(), ['repository:group/app:pull'], `${USER}:wrong`)).status).toBe(401);
    expect((await token(issuer(), ['repository:group/app:pull'], 'nobody:x')).status).toBe(401);
    expect(issuer().issued()).toBe(before);
    const anon = (await (await token(issuer(), ['repository:group/app:pull', 'repository:public/base:pull,push'])).json()) as { token: string };
    expect(decodeJwt(anon.token).claims.access).toEqual([{ type: 'repository', name: 'public/base', actions: ['pull'] }]);
    expect(issuer().requests.at(-1)?.user).toBeUndefined();
  });

  it('grants the catalog only to users allowed it, and the registry lists it for them', async () => {
    const denied = (await (await token(issuer(), ['registry:catalog:*'], CREDS)).json()) as { token: string };
    expect(decodeJwt(denied.token).claims.access).toEqual([]);
    const granted = (await (await token(issuer(), ['registry:catalog:*'], 'crawler:crawler-pass')).json()) as { token: string };
    expect(decodeJwt(granted.token).claims.access).toEqual([{ type: 'registry', name: 'catalog', actions: ['*'] }]);
    expect((await curlManifest(`${registry().url}/v2/_catalog`, { auth: { bearer: denied.token } })).status).toBe(401);
    const listed = await curlManifest(`${registry().url}/v2/_catalog`, { auth: { bearer: granted.token } });
    expect(listed.status).toBe(200);
    expect(JSON.parse(listed.body.toString())).toHaveProperty('repositories');
  });
});

describe('a registry with token auth', () => {
  it('refuses an anonymous push and takes one with the Basic credentials of the issuer', async () => {
    const image = await makeImage(join(tmp(), 'img'));
    await expect(pushImage(image, `${registry().host}/group/app:v1`)).rejects.toThrow(/unauthorized|denied|authentication required/i);
    await expect(pushImage(image, `${registry().host}/group/app:v1`, { creds: `${USER}:wrong` })).rejects.toThrow(/unauthorized|denied/i);
    const before = issuer().issued();
    expect(await pushImage(image, `${registry().host}/group/app:v1`, { creds: CREDS })).toBe(image.digest);
    expect(issuer().issued()).toBeGreaterThan(before);
    expect(issuer().requests.at(-1)).toMatchObject({ user: USER, scopes: expect.arrayContaining(['repository:group/app:pull,push']) });
    expect((await skopeoInspectRaw(`${registry().host}/group/app:v1`, CREDS)).equals(image.manifestBytes)).toBe(true);
    // A pull-only user can read but not write.
    await expect(pushImage(image, `${registry().host}/group/app:v2`, { creds: 'reader:reader-pass' })).rejects.toThrow(/unauthorized|denied|authentication required/i);
    expect((await skopeoInspectRaw(`${registry().host}/group/app:v1`, 'reader:reader-pass')).length).toBeGreaterThan(0);
  });

  it('refuses a token once its expires_in has passed', async () => {
    issuer().setExpiresIn(1);
    try {
      const res = await token(issuer(), ['repository:group/app:pull'], CREDS);
      const body = (await res.json()) as { token: string; expires_in: number };
      expect(body.expires_in).toBe(1);
      const url = `${registry().url}/v2/group/app/manifests/v1`;
      expect((await curlManifest(url, { accept: MEDIA.ociManifest, auth: { bearer: body.token } })).status).toBe(200);
      // Claims are whole seconds: the token lives between 1 and 2 s.
      await new Promise((resolve) => setTimeout(resolve, 2100));
      const expired = await curlManifest(url, { accept: MEDIA.ociManifest, auth: { bearer: body.token } });
      expect(expired.status).toBe(401);
      expect(expired.headers['www-authenticate']).toContain('error="invalid_token"');
      expect(expired.headers['www-authenticate']).toContain(`realm="${issuer().realm}"`);
    } finally {
      issuer().setExpiresIn(300);
    }
  });

  it('also accepts tokens that carry the certificate in x5c', async () => {
    const x5c = await startTokenIssuer({ keyHeader: 'x5c', users: { [USER]: { password: PASSWORD } } });
    const reg = await startRegistry({ auth: { tokenIssuer: x5c } });
    try {
      const body = (await (await token(x5c, ['repository:any/repo:pull'], CREDS)).json()) as { token: string };
      expect(decodeJwt(body.token).header.x5c).toHaveLength(1);
      const r = await curlManifest(`${reg.url}/v2/any/repo/tags/list`, { auth: { bearer: body.token } });
      expect(r.status).toBe(404); // authorized, and the repository is unknown
      const none = await curlManifest(`${reg.url}/v2/any/repo/tags/list`, { auth: { bearer: issuer().mintToken({ access: [{ type: 'repository', name: 'any/repo', actions: ['pull'] }] }) } });
      expect(none.status).toBe(401); // signed by a key this registry does not trust
    } finally {
      await reg.stop();
      await x5c.stop();
    }
  });
});
