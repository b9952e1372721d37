import { describe, expect, it } from 'vitest';
import { InvalidInputError, exitCodeFor } from '../errors.js';
import { formatReference, parseReference, registryBaseUrl, registryScheme } from './reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  it.each([
    ['alpine', { registry: 'index.docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['alpine:3.20', { registry: 'index.docker.io', repository: 'library/alpine', tag: '3.20' }],
    ['docker.io/alpine', { registry: 'index.docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['bitnami/redis', { registry: 'index.docker.io', repository: 'bitnami/redis', tag: 'latest' }],
    ['registry.gitlab.com/group/sub/app:1.0', { registry: 'registry.gitlab.com', repository: 'group/sub/app', tag: '1.0' }],
    ['localhost:5000/app', { registry: 'localhost:5000', repository: 'app', tag: 'latest' }],
    ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest' }],
    ['127.0.0.1:5000/a/b:t', { registry: '127.0.0.1:5000', repository: 'a/b', tag: 't' }],
    ['[::1]:5000/app:x', { registry: '[::1]:5000', repository: 'app', tag: 'x' }],
    [`reg.example.com/app@${D}`, { registry: 'reg.example.com', repository: 'app', digest: D }],
    [`reg.example.com/app:v1@${D}`, { registry: 'reg.example.com', repository: 'app', tag: 'v1', digest: D }],
    ['reg.example.com/a.b/c_d/e__f/g-h--i:T_1.x-y', { registry: 'reg.example.com', repository: 'a.b/c_d/e__f/g-h--i', tag: 'T_1.x-y' }],
  ])('%s', (input, want) => {
    expect(parseReference(input)).toEqual(want);
  });

  it.each([
    ['', 'empty'],
    ['bad_host.com/app', 'registry host'],
    ['reg.example.com/App', 'path component'],
    ['reg.example.com/app:', 'tag'],
    ['reg.example.com/app:-x', 'tag'],
    ['reg.example.com/app@sha256:abc', 'digest'],
    ['https://reg.example.com/app', 'scheme'],
    ['reg.example.com//app', 'empty component'],
    ['reg.example.com/app name', 'white space'],
    ['reg.example.com:99999/app', 'registry host'],
    [`reg.example.com/${'a'.repeat(300)}`, 'longer'],
    ['reg.example.com/a_-b', 'path component'],
  ])('refuses %j (%s)', (input, why) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as InvalidInputError).code).toBe('INVALID_REFERENCE');
    expect(exitCodeFor(err as InvalidInputError)).toBe(2);
    expect((err as Error).message).toContain(why);
  });

  it('round-trips through formatReference', () => {
    for (const s of ['registry.gitlab.com/g/app:1', `127.0.0.1:5000/a@${D}`, `h.io/x:y@${D}`]) {
      expect(formatReference(parseReference(s))).toBe(s);
    }
  });
});

describe('registryScheme', () => {
  it('uses http for loopback only', () => {
    expect(registryScheme('localhost:5000')).toBe('http');
    expect(registryScheme('127.0.0.1:5000')).toBe('http');
    expect(registryScheme('127.8.9.10')).toBe('http');
    expect(registryScheme('[::1]:5000')).toBe('http');
    expect(registryScheme('registry.gitlab.com')).toBe('https');
    expect(registryScheme('10.0.0.1:5000')).toBe('https');
    expect(registryScheme('localhost.example.com')).toBe('https');
  });

  it('uses http for hosts named insecure, and only those', () => {
    expect(registryScheme('reg.internal:5000', ['reg.internal:5000'])).toBe('http');
    expect(registryScheme('reg.internal:5001', ['reg.internal:5000'])).toBe('https');
    expect(registryScheme('reg.internal:5001', ['reg.internal'])).toBe('http');
    expect(registryScheme('other.internal', ['reg.internal'])).toBe('https');
  });

  it('uses https for a registry the user wrote with https://, on loopback too', () => {
    expect(registryScheme('127.0.0.1:5443', [], ['127.0.0.1:5443'])).toBe('https');
    expect(registryScheme('127.0.0.1:5000', [], ['127.0.0.1:5443'])).toBe('http');
    expect(registryBaseUrl('localhost:5443', ['localhost:5443'], ['localhost:5443'])).toBe('https://localhost:5443');
  });

  it('talks to Docker Hub at registry-1.docker.io', () => {
    expect(registryBaseUrl('index.docker.io')).toBe('https://registry-1.docker.io');
  });
});
