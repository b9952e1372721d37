// A real registry (CNCF distribution 2.8, Debian's docker-registry) on a loopback port, with its
// storage in a temp dir, behind a transparent counting proxy so tests can count the requests
// it received.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { killChild, makeTempDir, removeTempDir, spawnGroup } from './cleanup.js';
import { startFaultProxy, type FaultProxy, type RecordedRequest, type RequestFilter } from './fault-proxy.js';
import { freePort, LOOPBACK } from './ports.js';
import type { TokenIssuer } from './token-issuer.js';

export const REGISTRY_BINARY = 'docker-registry';

export interface NotificationEndpoint {
  /** Where distribution POSTs its event envelopes (application/vnd.docker.distribution.events.v1+json). */
  url: string;
  /** Sent with every POST, e.g. { Authorization: ['Bearer secret'] }. */
  headers?: Record<string, string[]>;
  /** Default 'tagtrail-test'. */
  name?: string;
  /** Per POST. Default 1000 ms. */
  timeoutMs?: number;
  /** Failures in a row before distribution backs off. Default 3. */
  threshold?: number;
  /** Wait after threshold failures before it tries again. Default 200 ms. */
  backoffMs?: number;
  /** Events whose target has one of these media types are not sent, e.g. application/octet-stream for blobs. */
  ignoredMediaTypes?: string[];
  /** Actions not sent: 'pull', 'push', 'mount', 'delete'. */
  ignoredActions?: string[];
}

export interface RegistryOptions {
  /** 'none' (default): anyone may do anything. Token: the registry sends clients to the issuer's realm. */
  auth?: 'none' | { tokenIssuer: Pick<TokenIssuer, 'realm' | 'service' | 'issuer' | 'certPath'> };
  notifications?: NotificationEndpoint | NotificationEndpoint[];
  /** storage.delete.enabled: manifests and blobs may be deleted. Default false, as in distribution. */
  deleteEnabled?: boolean;
  /** distribution's log.level. Default info, which includes one access log line per request. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** How long to wait for /v2/ to answer. Default 15 s. */
  startTimeoutMs?: number;
  /** compatibility.schema1.enabled: accept pushes of (signed) Docker schema 1 manifests. Default false, as in distribution. */
  schema1?: boolean;
  /**
   * Serve https with this certificate and key (PEM file paths; see tls.ts). The registry is then
   * reached directly, without the counting proxy: host is its own address, url https://…, and
   * requests/count() are not available.
   */
  tls?: { certificate: string; key: string };
}

/** A request line of distribution's own access log (Apache combined format, on its stdout). */
export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  bytes: number;
  userAgent: string;
}

export interface TestRegistry {
  /** 127.0.0.1:PORT of the counting proxy in front, for image references: `${host}/group/app:tag`. */
  host: string;
  /** http://127.0.0.1:PORT, same origin as host. */
  url: string;
  /** The registry's own 127.0.0.1:PORT, bypassing the counting proxy. */
  directHost: string;
  storageDir: string;
  configPath: string;
  /** The pid of distribution, which leads its own process group. */
  pid: number;
  /**
   * Every request that reached the registry through host, recorded on arrival (so complete as
   * soon as the client has its answer), with status once answered. Clear with resetRequests().
   */
  requests: RecordedRequest[];
  count(filter?: RequestFilter | ((r: RecordedRequest) => boolean)): number;
  resetRequests(): void;
  /**
   * Request lines from distribution's own access log. Written after each response completes, so
   * they may lag the client by a moment; use count() for exact counting.
   */
  accessLog(): AccessLogEntry[];
  /** distribution's output so far, stdout and stderr interleaved. */
  log(): string[];
  stop(): Promise<void>;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await makeTempDir('registry');
  const storageDir = join(dir, 'storage');
  const configPath = join(dir, 'config.yml');
  let child: ChildProcess | undefined;
  let front: FaultProxy | undefined;
  try {
    await mkdir(storageDir);
    const lines: string[] = [];
    let port = 0;
    // freePort() can race with another process taking the port; retry with a new one.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      await writeFile(configPath, registryConfig(options, storageDir, port));
      lines.length = 0;
      child = spawnRegistry(configPath, lines);
      const ready = await waitReady(child, port, options.startTimeoutMs ?? 15_000, options.tls !== undefined);
      if (ready === 'ready') break;
      await killChild(child);
      const bindFailed = lines.some((l) => /address already in use/.test(l));
      if (!bindFailed || attempt >= 3) {
        throw new Error(`registry did not start (${ready}); its log:\n${lines.join('\n')}`);
      }
    }
    const directHost = `${LOOPBACK}:${port}`;
    if (options.tls) {
      const running = child;
      const noCounting = (): never => {
        throw new Error('a TLS registry has no counting proxy in front: requests cannot be counted');
      };
      return {
        host: directHost,
        url: `https://${directHost}`,
        directHost,
        storageDir,
        configPath,
        pid: running.pid as number,
        requests: [],
        count: noCounting,
        resetRequests: noCounting,
        accessLog: () => lines.map(parseAccessLine).filter((e): e is AccessLogEntry => e !== undefined),
        log: () => [...lines],
        stop: async () => {
          await killChild(running);
          await removeTempDir(dir);
        },
      };
    }
    front = await startFaultProxy({ upstream: `http://${directHost}` });
    const proxy = front;
    const running = child;
    return {
      host: proxy.host,
      url: proxy.url,
      directHost,
      storageDir,
      configPath,
      pid: running.pid as number,
      requests: proxy.requests,
      count: (filter) => proxy.count(filter),
      resetRequests: () => proxy.reset(),
      accessLog: () => lines.map(parseAccessLine).filter((e): e is AccessLogEntry => e !== undefined),
      log: () => [...lines],
      stop: async () => {
        await proxy.stop();
        await killChild(running);
        await removeTempDir(dir);
      },
    };
  } catch (err) {
    await front?.stop();
    if (child) await killChild(child);
    await removeTempDir(dir);
    throw err;
  }
}

/** Starts a registry, runs fn with it, and stops it whatever fn does. */
export async function withRegistry<T>(options: RegistryOptions, fn: (registry: TestRegistry) => Promise<T>): Promise<T> {
  const registry = await startRegistry(options);
  try {
    return await fn(registry);
  } finally {
    await registry.stop();
  }
}

/**
 * distribution's configuration. JSON is valid YAML, and saves us quoting rules. Durations are Go
 * duration strings, which distribution's YAML decoder parses into time.Duration.
 */
export function registryConfig(options: RegistryOptions, storageDir: string, port: number): string {
  const config: Record<string, unknown> = {
    version: '0.1',
    log: { level: options.logLevel ?? 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: options.deleteEnabled ?? false },
      // No background purge of upload dirs while a test runs.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `${LOOPBACK}:${port}`,
      // A fixed secret silences the warning, and is what signs upload state between requests.
      secret: randomBytes(16).toString('hex'),
      ...(options.tls ? { tls: { certificate: options.tls.certificate, key: options.tls.key } } : {}),
    },
  };
  if (options.schema1) config.compatibility = { schema1: { enabled: true } };
  const auth = options.auth ?? 'none';
  if (auth !== 'none') {
    const { tokenIssuer } = auth;
    config.auth = {
      token: { realm: tokenIssuer.realm, service: tokenIssuer.service, issuer: tokenIssuer.issuer, rootcertbundle: tokenIssuer.certPath },
    };
  }
  if (options.notifications) {
    const endpoints = Array.isArray(options.notifications) ? options.notifications : [options.notifications];
    config.notifications = {
      endpoints: endpoints.map((e, i) => ({
        name: e.name ?? (endpoints.length === 1 ? 'tagtrail-test' : `tagtrail-test-${i + 1}`),
        url: e.url,
        headers: e.headers ?? {},
        timeout: `${e.timeoutMs ?? 1000}ms`,
        threshold: e.threshold ?? 3,
        backoff: `${e.backoffMs ?? 200}ms`,
        ...(e.ignoredMediaTypes ? { ignoredmediatypes: e.ignoredMediaTypes } : {}),
        ...(e.ignoredActions ? { ignore: { actions: e.ignoredActions } } : {}),
      })),
    };
  }
  return `${JSON.stringify(config, null, 2)}\n`;
}

function spawnRegistry(configPath: string, lines: string[]): ChildProcess {
  const child = spawnGroup(REGISTRY_BINARY, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (stream: NodeJS.ReadableStream): void => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const p of parts) if (p.length > 0) lines.push(p);
    });
    stream.on('end', () => {
      if (partial.length > 0) lines.push(partial);
    });
  };
  if (child.stdout) collect(child.stdout);
  if (child.stderr) collect(child.stderr);
  return child;
}

/** Whether the TLS registry answers /v2/: a readiness probe only, so the certificate is not checked here. */
function tlsAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsGet({ host: LOOPBACK, port, path: '/v2/', rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 || res.statusCode === 401);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

async function waitReady(child: ChildProcess, port: number, timeoutMs: number, tls = false): Promise<'ready' | string> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exited with ${code ?? signal}`;
  });
  child.once('error', (err) => {
    exited = `could not run ${REGISTRY_BINARY}: ${err.message}`;
  });
  while (Date.now() < deadline) {
    if (exited) return exited;
    if (tls) {
      if (await tlsAnswers(port)) return 'ready';
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    try {
      const res = await fetch(`http://${LOOPBACK}:${port}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return 'ready';
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return exited ?? `no answer on /v2/ within ${timeoutMs} ms`;
}

// 127.0.0.1 - - [26/Nov/2026:16:55:33 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"
const ACCESS_LINE = /^\S+ \S+ \S+ \[[^\]]+\] "(\S+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"/;

export function parseAccessLine(line: string): AccessLogEntry | undefined {
  const m = ACCESS_LINE.exec(line);
  if (!m) return undefined;
  return { method: m[1] as string, path: m[2] as string, status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4]), userAgent: m[5] as string };
}

// ---------------------------------------------------------------------------------------------
// Notifications

export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';

/** One event of distribution's envelope (the fields tests look at; the rest is kept). */
export interface RegistryEvent {
  id: string;
  timestamp: string;
  action: 'push' | 'pull' | 'mount' | 'delete' | string;
  target: {
    mediaType?: string;
    digest?: string;
    size?: number;
    length?: number;
    repository: string;
    url?: string;
    tag?: string;
  };
  request?: { id?: string; addr?: string; host?: string; method?: string; useragent?: string };
  actor?: { name?: string };
  source?: { addr?: string; instanceID?: string };
  [key: string]: unknown;
}

export interface NotificationDelivery {
  contentType: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  events: RegistryEvent[];
}

export interface NotificationSink {
  /** For NotificationEndpoint.url. */
  url: string;
  deliveries: NotificationDelivery[];
  /** All events received so far, in order. */
  events(): RegistryEvent[];
  /** Resolves with the first event (old or new) that matches; rejects after timeoutMs (default 10 s). */
  waitForEvent(match: (e: RegistryEvent) => boolean, timeoutMs?: number): Promise<RegistryEvent>;
  /** Answer the next deliveries with this status (e.g. 500 to make distribution retry). Default 200. */
  setStatus(status: number): void;
  stop(): Promise<void>;
}

/** A loopback HTTP listener that takes distribution's event envelopes (POST {events: [...]}). */
export async function startNotificationSink(): Promise<NotificationSink> {
  const deliveries: NotificationDelivery[] = [];
  const waiters = new Set<() => void>();
  let status = 200;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (status < 300) {
        let events: RegistryEvent[] = [];
        try {
          events = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events?: RegistryEvent[] }).events ?? [];
        } catch {
          // kept as an empty delivery: a test of the content will fail on it
        }
        deliveries.push({ contentType: req.headers['content-type'], headers: { ...req.headers }, events });
        for (const wake of waiters) wake();
      }
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const events = (): RegistryEvent[] => deliveries.flatMap((d) => d.events);
  return {
    url: `http://${LOOPBACK}:${port}/events`,
    deliveries,
    events,
    waitForEvent(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = events().find(match);
          if (!found) return false;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(found);
          return true;
        };
        const wake = (): void => {
          check();
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`no matching registry event within ${timeoutMs} ms; got ${JSON.stringify(events().map((e) => `${e.action} ${e.target.repository} ${e.target.mediaType ?? ''} ${e.target.tag ?? ''}`))}`));
        }, timeoutMs);
        waiters.add(wake);
        check();
      });
    },
    setStatus(s) {
      status = s;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
