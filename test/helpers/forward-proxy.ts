// A small HTTP proxy on loopback, as a corporate proxy behaves: CONNECT tunnels for https URLs,
// absolute-form requests forwarded for http URLs. It records what went through it, so a test can
// tell which requests took the proxy and which went direct.
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { LOOPBACK } from './ports.js';

export interface ProxiedRequest {
  /** CONNECT, or the method of a forwarded request. */
  method: string;
  /** host:port for CONNECT, the absolute URL for a forwarded request. */
  target: string;
  /** The Proxy-Authorization header the client sent, if any. */
  proxyAuthorization?: string;
}

export interface ForwardProxy {
  /** http://127.0.0.1:PORT, for HTTPS_PROXY and http_proxy. */
  url: string;
  requests: ProxiedRequest[];
  reset(): void;
  stop(): Promise<void>;
}

function authorization(headers: IncomingHttpHeaders): { proxyAuthorization?: string } {
  const v = headers['proxy-authorization'];
  return v === undefined ? {} : { proxyAuthorization: v };
}

export async function startForwardProxy(): Promise<ForwardProxy> {
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const target = req.url ?? '';
    requests.push({ method: req.method ?? '', target, ...authorization(req.headers) });
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      res.writeHead(400).end('absolute-form request expected');
      return;
    }
    const upstream = httpRequest(url, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.headersSent ? res.destroy() : res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    requests.push({ method: 'CONNECT', target, ...authorization(req.headers) });
    const colon = target.lastIndexOf(':');
    const upstream = connect({ host: target.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(target.slice(colon + 1)) }, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${LOOPBACK}:${port}`,
    requests,
    reset: () => {
      requests.length = 0;
    },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
