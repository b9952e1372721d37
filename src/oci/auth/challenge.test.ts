import { describe, expect, it } from 'vitest';
import { parseChallenges } from './challenge.js';

describe('parseChallenges', () => {
  it('reads a GitLab-style Bearer challenge', () => {
    const [c] = parseChallenges('Bearer realm="https://gitlab.example.com/jwt/auth",service="container_registry",scope="repository:g/app:pull,push",error="invalid_token"');
    expect(c?.scheme).toBe('bearer');
    expect(c?.params).toEqual({ realm: 'https://gitlab.example.com/jwt/auth', service: 'container_registry', scope: 'repository:g/app:pull,push', error: 'invalid_token' });
  });

  it('reads several challenges, unquoted values and escapes', () => {
    const cs = parseChallenges('Basic realm="Registry \\"x\\"", Bearer realm=https://a/b, service=svc');
    expect(cs.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(cs[0]?.params.realm).toBe('Registry "x"');
    expect(cs[1]?.params).toEqual({ realm: 'https://a/b', service: 'svc' });
  });

  it('returns nothing for an absent header', () => {
    expect(parseChallenges(null)).toEqual([]);
  });
});
