import { UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { AuthError, NetworkError, httpStatusFor } from '../errors.js';
import { IdTokenVerifier } from './id-token.js';

const ISSUER = 'http://127.0.0.1:9';
const token = (iss: string): string => new UnsecuredJWT({ iss, aud: 'http://127.0.0.1:8080' }).setIssuedAt().setExpirationTime('5m').encode();

describe('IdTokenVerifier', () => {
  it('takes a GitLab it cannot reach for an upstream failure (502), not a bad token', async () => {
    const verifier = new IdTokenVerifier({ issuers: [ISSUER], audience: 'http://127.0.0.1:8080', fetch: () => Promise.reject(new TypeError('fetch failed')), now: () => new Date() });
    const err = await verifier.verify(token(ISSUER)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect(httpStatusFor(err as NetworkError)).toBe(502);
  });

  it('and a discovery document that answers 500 too', async () => {
    const verifier = new IdTokenVerifier({ issuers: [ISSUER], audience: 'http://127.0.0.1:8080', fetch: async () => new Response('oops', { status: 500 }), now: () => new Date() });
    await expect(verifier.verify(token(ISSUER))).rejects.toBeInstanceOf(NetworkError);
  });

  it('refuses a token of another issuer without fetching anything (401)', async () => {
    let fetched = 0;
    const verifier = new IdTokenVerifier({ issuers: [ISSUER], audience: 'http://127.0.0.1:8080', fetch: async () => { fetched++; return new Response('{}'); }, now: () => new Date() });
    await expect(verifier.verify(token('https://gitlab.com'))).rejects.toBeInstanceOf(AuthError);
    expect(fetched).toBe(0);
  });
});
