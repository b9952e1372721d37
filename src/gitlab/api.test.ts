import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NotFoundError, UsageError } from '../errors.js';
import { GitlabApi, checkGitlabUrl, nextLink } from './api.js';

describe('checkGitlabUrl', () => {
  it('takes https anywhere and plain http only on loopback', () => {
    expect(checkGitlabUrl('https://gitlab.example.com/').href).toBe('https://gitlab.example.com/');
    expect(checkGitlabUrl('https://example.com/gitlab/').pathname).toBe('/gitlab');
    expect(checkGitlabUrl('http://127.0.0.1:8929').origin).toBe('http://127.0.0.1:8929');
    expect(checkGitlabUrl('http://localhost:8929').origin).toBe('http://localhost:8929');
    expect(() => checkGitlabUrl('http://gitlab.example.com')).toThrow(UsageError);
    expect(() => checkGitlabUrl('https://user:pw@gitlab.example.com')).toThrow(UsageError);
    expect(() => checkGitlabUrl('ftp://gitlab.example.com')).toThrow(UsageError);
  });
});

describe('nextLink', () => {
  it('finds rel="next" among the others, in any order', () => {
    const h = '<https://g.example/api/v4/x?page=1>; rel="prev", <https://g.example/api/v4/x?page=3>; rel="next", <https://g.example/api/v4/x?page=1>; rel="first"';
    expect(nextLink(h)).toBe('https://g.example/api/v4/x?page=3');
    expect(nextLink('<https://g.example/a?page=1>; rel="first", <https://g.example/a?page=1>; rel="last"')).toBeUndefined();
    expect(nextLink(null)).toBeUndefined();
  });
});

// A scripted server: each test says what each request gets.
let server: ReturnType<typeof createServer> | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse, base: string) => void): Promise<string> {
  let base = '';
  server = createServer((req, res) => handler(req, res, base));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return base;
}

function api(base: string, sleeps: number[] = []): GitlabApi {
  return new GitlabApi({ url: checkGitlabUrl(base), token: 'glpat-secret', fetch: globalThis.fetch, sleep: async (ms) => void sleeps.push(ms) });
}

const repo = (i: number, host = 'registry.example.com'): Record<string, unknown> => ({ id: i, path: `g/p${i}`, project_id: i, location: `${host}/g/p${i}` });

describe('GitlabApi', () => {
  it('follows X-Next-Page when there is no Link header', async () => {
    const seen: string[] = [];
    const base = await serve((req, res) => {
      seen.push(req.url ?? '');
      const page = new URL(req.url ?? '', 'http://x').searchParams.get('page') ?? '1';
      res.writeHead(200, { 'content-type': 'application/json', 'x-next-page': page === '1' ? '2' : '' });
      res.end(JSON.stringify([repo(Number(page))]));
    });
    const paths: string[] = [];
    for await (const r of api(base).groupRegistryRepositories('g')) paths.push(r.path);
    expect(paths).toEqual(['g/p1', 'g/p2']);
    expect(seen).toEqual(['/api/v4/groups/g/registry/repositories?per_page=100', '/api/v4/groups/g/registry/repositories?per_page=100&page=2']);
  });

  it('refuses a next-page link to another origin, without sending the token there', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', link: '<https://elsewhere.example/api/v4/groups/g/registry/repositories?page=2>; rel="next"' });
      res.end(JSON.stringify([repo(1)]));
    });
    const list = api(base).groupRegistryRepositories('g');
    await expect((async () => {
      for await (const _ of list) void _;
    })()).rejects.toThrow(/another server \(elsewhere\.example\)/);
  });

  it('waits Retry-After on 429, capped, and maps 404 to NotFoundError', async () => {
    let n = 0;
    const base = await serve((req, res) => {
      n++;
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '3600', 'content-type': 'text/plain' }).end('Retry later\n');
        return;
      }
      expect(req.headers['private-token']).toBe('glpat-secret');
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"404 Project Not Found"}');
    });
    const sleeps: number[] = [];
    const err = await api(base, sleeps).project('g/p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain('404 Project Not Found');
    expect((err as Error).message).not.toContain('glpat-secret');
    expect(sleeps).toEqual([30_000]);
  });
});
