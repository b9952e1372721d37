// The node:http client of annotate and attach (src/net/node-http.ts), against a real HTTP server
// on loopback: what the registry transport relies on besides the proxy and CA rules, which
// network.test.ts checks through the built CLI.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBounded } from '../../src/bounded-body.js';
import type { HttpResponse } from '../../src/net/http.js';
import { nodeHttpClient } from '../../src/net/node-http.js';
import { LOOPBACK } from '../helpers/ports.js';

describe('the node:http registry client', () => {
  let server: Server;
  let base = '';
  const connections = new Set<Socket>();
  let opened = 0;
  const client = nodeHttpClient({});
  const get = (path: string, method = 'GET', timeoutMs = 10_000): Promise<HttpResponse> =>
    client({ method, url: `${base}${path}`, headers: {}, signal: AbortSignal.timeout(timeoutMs) });
  const read = (res: HttpResponse, max = 1024 * 1024): Promise<Uint8Array> => readBounded(res.body, res.headers.get('content-length'), max, () => new Error('too large'));

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/redirect') res.writeHead(307, { location: '/elsewhere' }).end('moved');
      else if (req.url === '/gzip') res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'application/json' }).end(gzipSync('{"a":1}'));
      else if (req.url === '/big') {
        // No Content-Length: only the bytes received can tell it is too large.
        res.writeHead(200);
        res.end(Buffer.alloc(256 * 1024, 1));
      } else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end('late'), 2_000);
      else if (req.method === 'PUT') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => res.writeHead(201, { 'x-length': String(req.headers['content-length']), 'x-body': Buffer.concat(chunks).toString() }).end());
      } else res.writeHead(200, { 'docker-content-digest': 'sha256:x', 'content-length': '2' }).end(req.method === 'HEAD' ? undefined : 'ok');
    });
    server.on('connection', (s: Socket) => {
      opened++;
      connections.add(s);
      s.on('close', () => connections.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
    base = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of connections) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('returns a redirect as it came, without following it', async () => {
    const res = await get('/redirect');
    expect(res.status).toBe(307);
    expect(res.headers.get('location')).toBe('/elsewhere');
    await res.discard();
  });

  it('gives the body as its raw bytes: no content decoding, so a digest is over what the server sent', async () => {
    const res = await get('/gzip');
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(Buffer.from(await read(res))).toEqual(gzipSync('{"a":1}'));
  });

  it('stops reading a body past the limit when no length was declared', async () => {
    await expect(read(await get('/big'), 64 * 1024)).rejects.toThrow('too large');
  });

  it('sends a PUT body with its Content-Length', async () => {
    const res = await client({ method: 'PUT', url: `${base}/put`, headers: { 'content-type': 'application/json' }, body: new TextEncoder().encode('{"x":"y"}'), signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(201);
    expect([res.headers.get('x-length'), res.headers.get('x-body')]).toEqual(['9', '{"x":"y"}']);
    await read(res);
  });

  it('keeps the connection alive across requests, HEADs included (one connection for GET, HEAD, HEAD, GET in turn)', async () => {
    const fresh = nodeHttpClient({});
    const before = opened;
    for (const method of ['GET', 'HEAD', 'HEAD', 'GET']) {
      const res = await fresh({ method, url: `${base}/ok`, headers: {}, signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      expect(res.headers.get('docker-content-digest')).toBe('sha256:x');
      if (method === 'HEAD') expect(res.body).toBeNull();
      else expect(Buffer.from(await read(res)).toString()).toBe('ok');
    }
    expect(opened - before).toBe(1);
  });

  it('rejects with the signal\'s TimeoutError when the answer does not come in time', async () => {
    const err = await get('/slow', 'GET', 200).catch((e: unknown) => e);
    expect((err as Error).name).toBe('TimeoutError');
  });

  it('a proxy that refuses the CONNECT tunnel is named with its answer', async () => {
    const refusing = createServer();
    refusing.on('connect', (_req, socket: Socket) => socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n'));
    await new Promise<void>((resolve) => refusing.listen(0, LOOPBACK, resolve));
    try {
      const proxy = `http://${LOOPBACK}:${(refusing.address() as AddressInfo).port}`;
      const viaProxy = nodeHttpClient({ https_proxy: proxy });
      const err = await viaProxy({ method: 'GET', url: 'https://registry.example.com/v2/', headers: {}, signal: AbortSignal.timeout(5_000) }).catch((e: unknown) => e);
      expect((err as Error).message).toBe(`the proxy ${new URL(proxy).host} refused the tunnel to registry.example.com:443 (HTTP 407)`);
    } finally {
      await new Promise<void>((resolve) => refusing.close(() => resolve()));
    }
  });

  it('names the failure of a connection by its code', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, LOOPBACK, resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await client({ method: 'GET', url: `http://${LOOPBACK}:${port}/v2/`, headers: {}, signal: AbortSignal.timeout(5_000) }).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });
});
