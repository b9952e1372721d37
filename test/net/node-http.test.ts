// The node:http client of annotate and attach (src/net/node-http.ts), against a real HTTP server
// on loopback: what the registry transport relies on besides the proxy and CA rules, which
// network.test.ts checks through the built CLI.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBounded } from '../../src/bounded-body.js';
import type { HttpResponse } from '../../src/net/http.js';
import { nodeHttpClient } from '../../src/net/node-http.js';
import { NetworkError, exitCodeFor } from '../../src/errors.js';
import { Transport } from '../../src/oci/transport.js';
import { startForwardProxy } from '../helpers/forward-proxy.js';
import { LOOPBACK } from '../helpers/ports.js';
import { makeCertificates } from '../helpers/tls.js';

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
      } else if (req.url === '/declared-huge') {
        // Declares more than the reader takes, sends a little and holds the connection open.
        res.writeHead(200, { 'content-length': String(64 * 1024 * 1024) });
        res.write(Buffer.alloc(1024, 1));
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

  it('closes the connection of a body refused for its declared length, so it cannot keep the process alive', async () => {
    const before = new Set(connections);
    // A client of its own, so the request opens a connection rather than taking a pooled one.
    const res = await nodeHttpClient({})({ method: 'GET', url: `${base}/declared-huge`, headers: {}, signal: AbortSignal.timeout(10_000) });
    const socket = [...connections].find((c) => !before.has(c));
    expect(socket).toBeDefined();
    const closed = new Promise<void>((resolve) => socket?.once('close', () => resolve()));
    await expect(read(res, 64 * 1024)).rejects.toThrow('too large');
    // Unfixed, the response stays unread and its socket open until the server drops it.
    await closed;
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

  it('a CONNECT the proxy never answers is dropped when the signal fires, so no socket is left open', async () => {
    // A proxy that takes the connection, reads the CONNECT and never answers it.
    const held: Socket[] = [];
    let accepted: (socket: Socket) => void = () => undefined;
    const connected = new Promise<Socket>((resolve) => (accepted = resolve));
    const silent = createNetServer((socket) => {
      held.push(socket);
      socket.resume();
      accepted(socket);
    });
    await new Promise<void>((resolve) => silent.listen(0, LOOPBACK, resolve));
    try {
      const viaProxy = nodeHttpClient({ https_proxy: `http://${LOOPBACK}:${(silent.address() as AddressInfo).port}` });
      const err = await viaProxy({ method: 'GET', url: 'https://registry.example.com/v2/', headers: {}, signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
      expect((err as Error).name).toBe('TimeoutError');
      const socket = await connected;
      // Unfixed, the CONNECT waits for its answer for ever, holding the socket (and the process) open.
      if (!socket.destroyed) await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('a tunnel kept alive outlives the signal of the request that opened it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tagtrail-tunnel-'));
    const certs = await makeCertificates(dir);
    const tlsServer = createHttpsServer({ cert: await readFile(certs.certificate), key: await readFile(certs.key) }, (_req, res) => res.writeHead(200, { 'content-length': '2' }).end('ok'));
    await new Promise<void>((resolve) => tlsServer.listen(0, LOOPBACK, resolve));
    const proxy = await startForwardProxy();
    try {
      const viaProxy = nodeHttpClient({ https_proxy: proxy.url, TAGTRAIL_CA_FILE: certs.caCertificate });
      const url = `https://localhost:${(tlsServer.address() as AddressInfo).port}/v2/`;
      // The first request's signal fires after its answer, as a timeout of a quick request does.
      const first = new AbortController();
      expect(Buffer.from(await read(await viaProxy({ method: 'GET', url, headers: {}, signal: first.signal }))).toString()).toBe('ok');
      first.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
      // The second request takes the pooled tunnel, which the first request's timeout must not have cut.
      expect(Buffer.from(await read(await viaProxy({ method: 'GET', url, headers: {}, signal: AbortSignal.timeout(10_000) }))).toString()).toBe('ok');
      expect(proxy.requests.map((r) => r.method)).toEqual(['CONNECT']);
    } finally {
      tlsServer.closeAllConnections();
      await proxy.stop();
      await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
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

describe('the registry transport over the node:http client', () => {
  it('joins repeated WWW-Authenticate headers as fetch does, and a redirect to another host carries no Authorization', async () => {
    const seenElsewhere: (string | undefined)[] = [];
    const elsewhere = createServer((req, res) => {
      seenElsewhere.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, LOOPBACK, resolve));
    const registryServer = createServer((req, res) => {
      if (!req.headers.authorization) {
        // Two challenges in two headers: only the second names a scheme tagtrail speaks.
        res.setHeader('www-authenticate', ['Negotiate', 'Basic realm="registry"']);
        res.writeHead(401).end();
      } else if (req.url === '/v2/') res.writeHead(200).end();
      else res.writeHead(307, { location: `http://localhost:${(elsewhere.address() as AddressInfo).port}/blob` }).end();
    });
    await new Promise<void>((resolve) => registryServer.listen(0, LOOPBACK, resolve));
    try {
      const registry = `${LOOPBACK}:${(registryServer.address() as AddressInfo).port}`;
      const transport = new Transport({
        fetch: () => Promise.reject(new Error('fetch must not be used')),
        http: nodeHttpClient({}),
        credentials: (r) => (r === registry ? { username: 'ci', password: 's3cret', source: 'the test' } : undefined),
        retry: { maxAttempts: 1 },
      });
      const res = await transport.request({ registry, method: 'GET', path: '/v2/app/blobs/sha256:abc' });
      expect(res.status).toBe(200);
      expect(res.url).toMatch(/^http:\/\/localhost:\d+\/blob$/);
      expect(seenElsewhere).toEqual([undefined]);
    } finally {
      registryServer.closeAllConnections();
      elsewhere.closeAllConnections();
      await new Promise<void>((resolve) => registryServer.close(() => resolve()));
      await new Promise<void>((resolve) => elsewhere.close(() => resolve()));
    }
  });
  it('a name that does not resolve and a connection reset mid-body each end as a NetworkError (exit 1), never a crash', async () => {
    const resetting = createServer((req, res) => {
      if (req.url === '/v2/') res.writeHead(200).end();
      else {
        res.writeHead(200, { 'content-length': '1000' });
        res.write('{"partial":', () => req.socket.resetAndDestroy());
      }
    });
    await new Promise<void>((resolve) => resetting.listen(0, LOOPBACK, resolve));
    try {
      const transport = new Transport({
        fetch: () => Promise.reject(new Error('fetch must not be used')),
        http: nodeHttpClient({}),
        credentials: () => undefined,
        retry: { maxAttempts: 2 },
        sleep: async () => undefined,
      });
      const unresolvable = await transport.request({ registry: 'registry.invalid', method: 'GET', path: '/v2/app/tags/list' }).catch((e: unknown) => e);
      expect(unresolvable).toBeInstanceOf(NetworkError);
      expect(exitCodeFor(unresolvable as NetworkError)).toBe(1);
      const registry = `${LOOPBACK}:${(resetting.address() as AddressInfo).port}`;
      const reset = await transport.request({ registry, method: 'GET', path: '/v2/app/manifests/v1' }).catch((e: unknown) => e);
      expect(reset).toBeInstanceOf(NetworkError);
      expect((reset as Error).message).toContain('failed after 2 attempts: the connection broke while reading the body (ECONNRESET)');
    } finally {
      resetting.closeAllConnections();
      await new Promise<void>((resolve) => resetting.close(() => resolve()));
    }
  });
});
