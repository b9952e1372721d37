// An HTTP proxy in front of a real registry that records and counts every request, and breaks
// the ones a test names: latency, error statuses, resets, short bodies, wrong digests, expired
// tokens, redirects. With no rules it is a transparent counting proxy.
import { createHash, randomBytes } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { LOOPBACK } from './ports.js';
import { LinkDirection, type LinkShape } from './shaped-link.js';
import { sleep } from '../../src/time.js';

/** What a request is, by its path in the registry API, so benchmarks can count by kind. */
export type RequestKind = 'base' | 'manifest' | 'blob' | 'upload' | 'tags' | 'catalog' | 'referrers' | 'other';

export interface RecordedRequest {
  /** 1-based arrival order at this proxy. */
  seq: number;
  /** 1-based number of the client connection it came on, in order of opening: keep-alive reuse shows as repeats. */
  connection: number;
  method: string;
  /** Path and query as the client sent them. */
  url: string;
  /** Path without the query. */
  path: string;
  kind: RequestKind;
  /** The repository named in a /v2/<name>/... path. */
  repository?: string;
  /** The tag or digest of a manifest request, the digest of a blob request. */
  reference?: string;
  /** The request headers as received, values included (a test can check a secret never leaks). */
  headers: IncomingHttpHeaders;
  hasAuthorization: boolean;
  /** The client's port of the connection it came on: requests on one kept-alive connection share it. */
  clientPort: number;
  /** The status the client got; undefined until the answer starts, or if none was sent. */
  status?: number;
  /** The fault applied to this request, if any. */
  fault?: Fault['kind'];
  /** Set when the exchange has ended: the client's response finished or the connection closed. */
  done: boolean;
  /** performance.now() when the request arrived, and when the exchange ended (as done). */
  receivedAt: number;
  endedAt?: number;
}

export type Fault =
  /** Wait, then forward as usual. */
  | { kind: 'latency'; ms: number }
  /** Hold the request until the promise settles, then forward as usual: lets a test see what a client sends while earlier requests are still unanswered. */
  | { kind: 'hold'; until: Promise<unknown> }
  /** Answer with this status without asking upstream; the body is a registry-style error. */
  | { kind: 'status'; status: number; retryAfter?: number | string; headers?: Record<string, string>; body?: string }
  /** Forward, send the upstream headers and the first afterBytes of the body (default: half), then reset the connection. */
  | { kind: 'reset'; afterBytes?: number }
  /** Forward, send the upstream Content-Length but only afterBytes of the body (default: half), then close cleanly. */
  | { kind: 'truncate'; afterBytes?: number }
  /** Forward, but answer with this Docker-Content-Digest (default: a random sha256). */
  | { kind: 'wrong-digest'; digest?: string }
  /**
   * Answer 401 as the registry would to an expired token. Unless wwwAuthenticate is given, the
   * challenge is the upstream's own: the request is replayed upstream without Authorization and
   * without a body (only when the upstream demands auth, so a replay can never act).
   */
  | { kind: 'unauthorized'; wwwAuthenticate?: string }
  /** Answer with a redirect to the same path and query on another origin, e.g. http://127.0.0.1:PORT. */
  | { kind: 'redirect'; to: string; status?: 301 | 302 | 303 | 307 | 308 }
  /** Close the connection without any answer. */
  | { kind: 'hangup' }
  /**
   * Forward to another path (and query) than the client asked for, and answer with what that
   * gave: a registry that resolves one reference as another, e.g. GitLab.com resolving the tag
   * sha256-<hex> to the manifest sha256:<hex>.
   */
  | { kind: 'rewrite'; to: (url: string) => string };

export interface FaultRule {
  /** Exact method, e.g. 'GET', or a pattern such as /^(GET|HEAD)$/. Default: any. */
  method?: string | RegExp;
  /** Pattern for the path and query, e.g. /\/manifests\//. Default: any. */
  path?: RegExp;
  /** Break only the Nth matching request (1-based). */
  nth?: number;
  /** Break only the first N matching requests. Default: every matching request. */
  times?: number;
  fault: Fault;
}

export interface RuleHandle {
  /** Requests that matched method and path, broken or not. */
  matched(): number;
  /** Requests this rule broke. */
  applied(): number;
  remove(): void;
}

export interface RequestFilter {
  method?: string | RegExp;
  path?: RegExp;
  kind?: RequestKind;
  repository?: string;
  status?: number;
  hasAuthorization?: boolean;
}

export interface FaultProxy {
  /** 127.0.0.1:PORT, for image references. */
  host: string;
  /** http://127.0.0.1:PORT */
  url: string;
  upstream: string;
  addRule(rule: FaultRule): RuleHandle;
  clearRules(): void;
  /** Every request received, in order of arrival. */
  requests: RecordedRequest[];
  count(filter?: RequestFilter | ((r: RecordedRequest) => boolean)): number;
  /** Forget the recorded requests (rules keep their own counters). */
  reset(): void;
  stop(): Promise<void>;
}

export interface FaultProxyOptions {
  /** http://127.0.0.1:PORT of the registry (or anything HTTP) to forward to. */
  upstream: string;
  /** Port to listen on; default a free one chosen by the kernel. */
  port?: number;
  /** Shape every request as over a slow link: added latency, and a bandwidth shared per direction. */
  link?: LinkShape;
}

// Per connection, not forwarded (RFC 9110 7.6.1); expect is answered by this proxy itself.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect']);

interface ActiveRule {
  rule: FaultRule;
  matched: number;
  applied: number;
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:') throw new Error(`fault proxy: upstream must be http://, got ${options.upstream}`);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let rules: ActiveRule[] = [];
  const requests: RecordedRequest[] = [];
  let seq = 0;
  let upstreamDemandsAuth: Promise<boolean> | undefined;
  let origin = '';
  const link = options.link;
  const uplink = link ? new LinkDirection(link.bitsPerSecond) : undefined;
  const downlink = link ? new LinkDirection(link.bitsPerSecond) : undefined;

  const server = createServer((req, res) => {
    const record = recordRequest(req, ++seq);
    requests.push(record);
    res.once('close', () => {
      record.done = true;
      record.endedAt = performance.now();
    });
    const fault = pickFault(rules, record);
    if (fault) record.fault = fault.kind;
    handle(req, res, record, fault).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`fault proxy: ${String(err)}`);
      } else {
        res.destroy();
      }
    });
  });
  // Clients that try TLS first (skopeo with tls-verify off) send a ClientHello; answer 400 and close.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) socket.destroy();
    else socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });

  async function handle(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, fault: Fault | undefined): Promise<void> {
    if (link && link.latencyMs > 0) await sleep(link.latencyMs);
    switch (fault?.kind) {
      case undefined:
        return forward(req, res, record, {});
      case 'latency':
        await sleep(fault.ms);
        return forward(req, res, record, {});
      case 'hold':
        await fault.until.catch(() => undefined);
        return forward(req, res, record, {});
      case 'status': {
        req.resume();
        const headers: Record<string, string> = { 'content-type': 'application/json', ...fault.headers };
        if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
        const body = fault.body ?? JSON.stringify({ errors: [{ code: statusCode(fault.status), message: `injected ${fault.status}`, detail: null }] });
        record.status = fault.status;
        res.writeHead(fault.status, headers).end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      case 'reset':
      case 'truncate':
        return forward(req, res, record, { cut: fault });
      case 'wrong-digest':
        return forward(req, res, record, { digest: fault.digest ?? `sha256:${createHash('sha256').update(randomBytes(16)).digest('hex')}` });
      case 'unauthorized':
        return unauthorized(req, res, record, fault.wwwAuthenticate);
      case 'redirect': {
        req.resume();
        record.status = fault.status ?? 307;
        res.writeHead(record.status, { location: new URL(req.url ?? '/', fault.to).toString(), 'content-length': '0' }).end();
        return;
      }
      case 'hangup':
        req.socket.destroy();
        return;
      case 'rewrite':
        return forward(req, res, record, { path: fault.to(req.url ?? '/') });
    }
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest,
    change: { cut?: Extract<Fault, { kind: 'reset' | 'truncate' }>; digest?: string; path?: string },
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
      }
      if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
      const upReq = httpRequest({
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: change.path ?? req.url,
        headers,
        agent,
      });
      upReq.once('error', reject);
      // The client went away (or a fault cut it off): stop the upstream exchange too.
      res.once('close', () => {
        if (!res.writableFinished) upReq.destroy();
      });
      upReq.once('response', (upRes) => {
        const out = responseHeaders(upRes, change.digest);
        record.status = upRes.statusCode ?? 502;
        if (!change.cut) {
          res.writeHead(record.status, upRes.statusMessage, out);
          (downlink ? upRes.pipe(downlink.throttle()) : upRes).pipe(res);
          upRes.once('end', () => resolve());
          upRes.once('error', reject);
          return;
        }
        // Fault on the body: read it all (test-sized), send part of it, then break the connection.
        const cut = change.cut;
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.once('error', reject);
        upRes.once('end', () => {
          const body = Buffer.concat(chunks);
          const keep = Math.min(cut.afterBytes ?? Math.floor(body.length / 2), Math.max(body.length - 1, 0));
          // Announce the whole length (at least one byte more than sent) so the client waits for more.
          const clean = stripHeader(out, 'content-length');
          clean.push('Content-Length', String(Math.max(body.length, keep + 1)));
          res.writeHead(record.status ?? 200, upRes.statusMessage, clean);
          res.flushHeaders();
          const socket = res.socket;
          const finish = (): void => {
            if (cut.kind === 'reset') socket?.resetAndDestroy();
            else socket?.end();
            resolve();
          };
          if (keep > 0) res.write(body.subarray(0, keep), finish);
          else setImmediate(finish);
        });
      });
      (uplink ? req.pipe(uplink.throttle()) : req).pipe(upReq);
    });
  }

  async function unauthorized(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, given: string | undefined): Promise<void> {
    req.resume();
    let challenge = given;
    let body = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: null }] });
    if (challenge === undefined) {
      upstreamDemandsAuth ??= probeAuth();
      if (await upstreamDemandsAuth) {
        const replay = await requestUpstream(req.method ?? 'GET', req.url ?? '/', hostHeader(req));
        if (replay.status === 401 && replay.wwwAuthenticate) {
          challenge = replay.wwwAuthenticate;
          if (replay.body.length > 0) body = replay.body.toString('utf8');
        }
      }
    }
    challenge ??= `Bearer realm="${origin}/token-expired",service="fault-proxy"`;
    record.status = 401;
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': challenge, 'docker-distribution-api-version': 'registry/2.0' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  async function probeAuth(): Promise<boolean> {
    const probe = await requestUpstream('GET', '/v2/', `${upstream.host}`);
    return probe.status === 401;
  }

  function requestUpstream(method: string, path: string, host: string): Promise<{ status: number; wwwAuthenticate?: string; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const r = httpRequest({ host: upstream.hostname, port: upstream.port, method, path, agent, headers: { host, 'content-length': '0' } }, (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.once('end', () => {
          const wa = upRes.headers['www-authenticate'];
          resolve({ status: upRes.statusCode ?? 0, body: Buffer.concat(chunks), ...(wa !== undefined ? { wwwAuthenticate: wa } : {}) });
        });
        upRes.once('error', reject);
      });
      r.once('error', reject);
      r.end();
    });
  }

  /** Upstream headers as a flat [name, value, ...] list, minus hop-by-hop, Location kept behind the proxy. */
  function responseHeaders(upRes: IncomingMessage, digest: string | undefined): string[] {
    const out: string[] = [];
    const raw = upRes.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string;
      let value = raw[i + 1] as string;
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower)) continue;
      if (lower === 'docker-content-digest' && digest !== undefined) continue;
      if (lower === 'location' && value.startsWith(upstream.origin)) value = origin + value.slice(upstream.origin.length);
      out.push(name, value);
    }
    if (digest !== undefined) out.push('Docker-Content-Digest', digest);
    return out;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, LOOPBACK, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = `${LOOPBACK}:${port}`;
  origin = `http://${host}`;

  return {
    host,
    url: origin,
    upstream: upstream.origin,
    addRule(rule) {
      const active: ActiveRule = { rule, matched: 0, applied: 0 };
      rules.push(active);
      return {
        matched: () => active.matched,
        applied: () => active.applied,
        remove: () => {
          rules = rules.filter((r) => r !== active);
        },
      };
    },
    clearRules() {
      rules = [];
    },
    requests,
    count(filter) {
      if (filter === undefined) return requests.length;
      const test = typeof filter === 'function' ? filter : (r: RecordedRequest) => matchesFilter(r, filter);
      return requests.filter(test).length;
    },
    reset() {
      requests.length = 0;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

function hostHeader(req: IncomingMessage): string {
  return req.headers.host ?? '';
}

function stripHeader(flat: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if ((flat[i] as string).toLowerCase() !== name) out.push(flat[i] as string, flat[i + 1] as string);
  }
  return out;
}

function pickFault(rules: ActiveRule[], record: RecordedRequest): Fault | undefined {
  let chosen: Fault | undefined;
  for (const active of rules) {
    const { rule } = active;
    if (!matchesMethod(record.method, rule.method)) continue;
    if (rule.path && !rule.path.test(record.url)) continue;
    active.matched += 1;
    if (chosen) continue; // the first applicable rule wins; later ones still count the match
    const n = active.matched;
    const applies = rule.nth !== undefined ? n === rule.nth : rule.times !== undefined ? n <= rule.times : true;
    if (applies) {
      active.applied += 1;
      chosen = rule.fault;
    }
  }
  return chosen;
}

function matchesMethod(method: string, want: string | RegExp | undefined): boolean {
  if (want === undefined) return true;
  return typeof want === 'string' ? method === want.toUpperCase() : want.test(method);
}

export function matchesFilter(r: RecordedRequest, f: RequestFilter): boolean {
  if (!matchesMethod(r.method, f.method)) return false;
  if (f.path && !f.path.test(r.url)) return false;
  if (f.kind !== undefined && r.kind !== f.kind) return false;
  if (f.repository !== undefined && r.repository !== f.repository) return false;
  if (f.status !== undefined && r.status !== f.status) return false;
  if (f.hasAuthorization !== undefined && r.hasAuthorization !== f.hasAuthorization) return false;
  return true;
}

const connectionNumbers = new WeakMap<Socket, number>();
let connectionsSeen = 0;

function connectionNumber(socket: Socket): number {
  let n = connectionNumbers.get(socket);
  if (n === undefined) {
    n = ++connectionsSeen;
    connectionNumbers.set(socket, n);
  }
  return n;
}

function recordRequest(req: IncomingMessage, seq: number): RecordedRequest {
  const url = req.url ?? '/';
  const path = url.split('?')[0] ?? url;
  return {
    seq,
    connection: connectionNumber(req.socket),
    method: req.method ?? 'GET',
    url,
    path,
    ...classify(path),
    headers: { ...req.headers },
    hasAuthorization: req.headers.authorization !== undefined,
    clientPort: req.socket.remotePort ?? 0,
    done: false,
    receivedAt: performance.now(),
  };
}

/** Names the registry API endpoint of a path; the repository name may have several components. */
export function classify(path: string): { kind: RequestKind; repository?: string; reference?: string } {
  if (path === '/v2/' || path === '/v2') return { kind: 'base' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  let m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
  if (m) return { kind: 'manifest', repository: m[1] as string, reference: decodeURIComponent(m[2] as string) };
  m = /^\/v2\/(.+)\/blobs\/uploads(?:\/.*)?$/.exec(path);
  if (m) return { kind: 'upload', repository: m[1] as string };
  m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
  if (m) return { kind: 'blob', repository: m[1] as string, reference: decodeURIComponent(m[2] as string) };
  m = /^\/v2\/(.+)\/tags\/list$/.exec(path);
  if (m) return { kind: 'tags', repository: m[1] as string };
  m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(path);
  if (m) return { kind: 'referrers', repository: m[1] as string, reference: decodeURIComponent(m[2] as string) };
  return { kind: 'other' };
}

function statusCode(status: number): string {
  if (status === 429) return 'TOOMANYREQUESTS';
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return 'NOT_FOUND';
  return 'UNAVAILABLE';
}

export interface RecordingServer {
  host: string;
  url: string;
  /** Every request received, headers and values included. */
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

/**
 * A plain listener that records what it receives and answers with respond() (default: 200, empty
 * body): the other host of a redirect test, to prove which headers crossed over. `host` is another
 * loopback address (127.0.0.2) when the test needs a different host name, not only another port.
 */
export async function startRecordingServer(
  respond: (req: RecordedRequest) => { status: number; headers?: Record<string, string>; body?: Buffer | string } = () => ({ status: 200 }),
  options: { host?: string } = {},
): Promise<RecordingServer> {
  const host = options.host ?? LOOPBACK;
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) throw new Error(`startRecordingServer listens on loopback only, not ${host}`);
  const requests: RecordedRequest[] = [];
  let seq = 0;
  const server = createServer((req, res) => {
    const record = recordRequest(req, ++seq);
    requests.push(record);
    req.resume();
    req.once('end', () => {
      const answer = respond(record);
      record.status = answer.status;
      const body = answer.body === undefined ? Buffer.alloc(0) : Buffer.from(answer.body);
      res.writeHead(answer.status, { 'content-length': String(body.length), ...answer.headers });
      res.end(req.method === 'HEAD' ? undefined : body);
      record.done = true;
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: `${host}:${port}`,
    url: `http://${host}:${port}`,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
