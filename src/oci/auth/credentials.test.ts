import { describe, expect, it } from 'vitest';
import { UsageError } from '../../errors.js';
import { credentialResolver, normalizeAuthKey } from './credentials.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('credentialResolver', () => {
  const files: Record<string, string> = {
    '/home/u/.docker/config.json': JSON.stringify({ auths: { 'https://reg.example.com/v1/': { auth: b64('fileuser:filepass') } } }),
    '/cfg/config.json': JSON.stringify({ auths: { 'reg.example.com': { username: 'cfguser', password: 'cfgpass' } } }),
    '/helper/config.json': JSON.stringify({ credsStore: 'desktop', auths: {} }),
  };
  const readFile = (p: string) => files[p];

  it('takes the first match in the documented order', () => {
    const env = {
      HOME: '/home/u',
      TAGTRAIL_REGISTRY_USER: 'tt',
      TAGTRAIL_REGISTRY_PASSWORD: 'ttpass',
      CI_REGISTRY: 'reg.example.com',
      CI_REGISTRY_USER: 'gitlab-ci-token',
      CI_REGISTRY_PASSWORD: 'jobtoken',
      DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'reg.example.com': { auth: b64('dac:dacpass') } } }),
    };
    expect(credentialResolver({ env, readFile, registries: ['reg.example.com'], explicit: { username: 'flag', password: 'p' } })('reg.example.com')?.username).toBe('flag');
    expect(credentialResolver({ env, readFile, registries: ['reg.example.com'] })('reg.example.com')?.username).toBe('tt');
    const noTt = { ...env, TAGTRAIL_REGISTRY_USER: undefined };
    expect(credentialResolver({ env: noTt, readFile, registries: ['reg.example.com'] })('reg.example.com')).toMatchObject({ username: 'gitlab-ci-token', password: 'jobtoken', source: 'CI_REGISTRY_USER' });
    // CI_REGISTRY credentials are only for CI_REGISTRY's host.
    expect(credentialResolver({ env: noTt, readFile, registries: ['reg.example.com'] })('other.example.com')).toBeUndefined();
    const noCi = { ...noTt, CI_REGISTRY_USER: undefined };
    expect(credentialResolver({ env: noCi, readFile, registries: ['reg.example.com'] })('reg.example.com')).toMatchObject({ username: 'dac', password: 'dacpass' });
    const noDac = { ...noCi, DOCKER_AUTH_CONFIG: undefined };
    expect(credentialResolver({ env: noDac, readFile, registries: ['reg.example.com'] })('reg.example.com')).toMatchObject({ username: 'fileuser', password: 'filepass' });
    expect(credentialResolver({ env: { ...noDac, DOCKER_CONFIG: '/cfg' }, readFile, registries: ['reg.example.com'] })('reg.example.com')).toMatchObject({ username: 'cfguser' });
  });

  it('binds --username and TAGTRAIL_REGISTRY_USER to the command\'s registry and TAGTRAIL_REGISTRY_HOSTS', () => {
    const env = { TAGTRAIL_REGISTRY_USER: 'tt', TAGTRAIL_REGISTRY_PASSWORD: 'ttpass' };
    const one = credentialResolver({ env, readFile, registries: ['reg.example.com'] });
    expect(one('reg.example.com')?.username).toBe('tt');
    expect(one('Reg.Example.com')?.username).toBe('tt');
    expect(one('other.example.com')).toBeUndefined();
    expect(one('reg.example.com:5050')).toBeUndefined();
    const flag = credentialResolver({ env: {}, readFile, registries: ['reg.example.com'], explicit: { username: 'u', password: 'p' } });
    expect(flag('other.example.com')).toBeUndefined();
    const listed = credentialResolver({ env: { ...env, TAGTRAIL_REGISTRY_HOSTS: 'other.example.com, https://third.example.com:5050/' }, readFile, registries: ['reg.example.com'] });
    expect(['reg.example.com', 'other.example.com', 'third.example.com:5050', 'fourth.example.com'].map((r) => listed(r)?.username)).toEqual(['tt', 'tt', 'tt', undefined]);
    // Several registries on one command: for the listed ones only; none listed is refused before any request.
    expect(() => credentialResolver({ env, readFile, registries: ['a.example.com', 'b.example.com'] })).toThrow(UsageError);
    expect(() => credentialResolver({ env: { ...env, TAGTRAIL_REGISTRY_HOSTS: 'c.example.com' }, readFile, registries: ['a.example.com', 'b.example.com'] })).toThrow(/TAGTRAIL_REGISTRY_HOSTS/);
    const ci = { ...env, CI_REGISTRY: 'a.example.com', CI_REGISTRY_USER: 'gitlab-ci-token', CI_REGISTRY_PASSWORD: 'job' };
    const some = credentialResolver({ env: { ...ci, TAGTRAIL_REGISTRY_HOSTS: 'b.example.com' }, readFile, registries: ['a.example.com', 'b.example.com'] });
    expect([some('a.example.com')?.source, some('b.example.com')?.source]).toEqual(['CI_REGISTRY_USER', 'TAGTRAIL_REGISTRY_USER']);
    // Without explicit credentials, several registries are fine: each source is bound on its own.
    expect(credentialResolver({ env: {}, readFile, registries: ['a.example.com', 'b.example.com'] })('a.example.com')).toBeUndefined();
    expect(() => credentialResolver({ env: { ...env, TAGTRAIL_REGISTRY_HOSTS: 'not a host' }, readFile, registries: ['reg.example.com'] })).toThrow(UsageError);
  });

  it('names an unsupported credential helper clearly', () => {
    let err: unknown;
    try {
      credentialResolver({ env: { DOCKER_CONFIG: '/helper' }, readFile, registries: ['reg.example.com'] })('reg.example.com');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain('docker-credential-desktop');
  });

  it('refuses malformed DOCKER_AUTH_CONFIG without echoing it', () => {
    let err: unknown;
    try {
      credentialResolver({ env: { DOCKER_AUTH_CONFIG: '{"auths": secret-stuff' }, readFile, registries: ['reg.example.com'] })('reg.example.com');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).not.toContain('secret-stuff');
  });

  it('normalises auth keys', () => {
    expect(normalizeAuthKey('https://index.docker.io/v1/')).toBe('index.docker.io');
    expect(normalizeAuthKey('docker.io')).toBe('index.docker.io');
    expect(normalizeAuthKey('Reg.Example.com:5000')).toBe('reg.example.com:5000');
  });
});
