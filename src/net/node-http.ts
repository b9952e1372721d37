// The registry client of every command, on node's own http and https. The short commands a CI job
// runs (annotate, attach) load it in a few milliseconds, where undici's fetch takes about 100 ms
// of CPU on every run before its first request. And undici closes the connection after every HEAD
// (against servers that send a body with one), so a crawl (a HEAD per tag) or serve's webhook (a
// HEAD per event on a manifest it has) would open a connection, and over https shake hands, for
// each; here they stay open for the next request. Same rules as the fetch of
// dispatcher.ts: the proxy variables by curl's rules (proxy.ts; http:// URLs as absolute-form
// requests to the proxy, https:// URLs through a CONNECT tunnel), the roots of TAGTRAIL_CA_FILE
// (ca.ts), keep-alive connections, no redirect followed and no content decoding (the transport
// digests raw bytes).
//
// There is no way to turn TLS verification off, on purpose: trust the CA instead.
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { trustedCertificates } from './ca.js';
import type { HttpClient, HttpRequest, HttpResponse } from './http.js';
import { bypassesProxy, proxySettingsFromEnv, type ProxySettings } from './proxy.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Proxy-Authorization for a proxy URL with user:password, as curl sends it. */
function proxyAuthorization(proxy: URL): Record<string, string> {
  if (!proxy.username && !proxy.password) return {};
  const basic = Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64');
  return { 'proxy-authorization': `Basic ${basic}` };
}

function defaultPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/** TLS options for a host: SNI only for names (RFC 6066 has none for addresses), the roots if set. */
function tlsFor(host: string, ca: string[] | undefined): tls.ConnectionOptions {
  const bare = host.replace(/^\[|\]$/g, '');
  return { host: bare, ...(isIP(bare) ? {} : { servername: bare }), ...(ca ? { ca } : {}) };
}

/** The request option that carries the request's signal to the CONNECT of its tunnel. */
const TUNNEL_SIGNAL = 'tagtrailTunnelSignal';
type TunnelRequestOptions = https.RequestOptions & { [TUNNEL_SIGNAL]?: AbortSignal };

/** An https agent whose connections are CONNECT tunnels through a proxy, pooled and kept alive like any. */
class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    private readonly ca: string[] | undefined,
  ) {
    super({ keepAlive: true });
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const done = callback ?? (() => undefined);
    const host = String(options.host ?? options.hostname ?? 'localhost');
    const target = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${options.port ?? 443}`;
    const viaTls = this.proxy.protocol === 'https:';
    const connect = (viaTls ? https : http).request({
      host: this.proxy.hostname.replace(/^\[|\]$/g, ''),
      port: defaultPort(this.proxy),
      method: 'CONNECT',
      path: target,
      headers: { host: target, ...proxyAuthorization(this.proxy) },
      agent: false,
      ...(viaTls ? tlsFor(this.proxy.hostname, this.ca) : {}),
    });
    connect.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        // No code: the transport then shows this message, which names the proxy and its answer.
        done(new Error(`the proxy ${this.proxy.host} refused the tunnel to ${target} (HTTP ${res.statusCode})`), socket);
        return;
      }
      done(null, tls.connect({ socket, ...tlsFor(host, this.ca) }));
    });
    connect.on('error', (err) => done(err, connect.socket as Duplex));
    // The request's signal bounds the CONNECT, and only until the tunnel is up: a proxy that never
    // answers must not hold its socket, and a pooled tunnel must outlive the request that opened it.
    const signal = (options as TunnelRequestOptions)[TUNNEL_SIGNAL];
    if (signal) {
      const abort = (): void => {
        connect.destroy(signal.reason as Error);
      };
      const unwatch = (): void => signal.removeEventListener('abort', abort);
      if (signal.aborted) abort();
      else {
        signal.addEventListener('abort', abort, { once: true });
        connect.once('connect', unwatch);
        connect.once('close', unwatch);
      }
    }
    connect.end();
    return undefined;
  }
}

interface Route {
  readonly module: typeof http | typeof https;
  readonly agent: http.Agent;
  /** Where the connection goes, and the request target it is sent. */
  readonly options: (url: URL) => https.RequestOptions;
}

/** The ways out for one environment: direct, or through the proxy for the URL's scheme. */
class Routes {
  private readonly settings: ProxySettings;
  private readonly ca: string[] | undefined;
  private readonly cache = new Map<string, Route>();
  /** The route of each scheme and host seen: NO_PROXY is matched once per host, not per request. */
  private readonly byHost = new Map<string, Route>();

  constructor(env: Env) {
    this.settings = proxySettingsFromEnv(env);
    this.ca = trustedCertificates(env);
  }

  private once(key: string, make: () => Route): Route {
    let route = this.cache.get(key);
    if (!route) {
      route = make();
      this.cache.set(key, route);
    }
    return route;
  }

  for(url: URL): Route {
    const key = `${url.protocol}//${url.hostname}`;
    let route = this.byHost.get(key);
    if (!route) {
      route = this.pick(url);
      this.byHost.set(key, route);
    }
    return route;
  }

  private pick(url: URL): Route {
    const https_ = url.protocol === 'https:';
    const proxy = bypassesProxy(url.hostname, this.settings.noProxy) ? undefined : https_ ? this.settings.https : this.settings.http;
    const ca = this.ca;
    const direct = (u: URL): https.RequestOptions => ({ host: u.hostname.replace(/^\[|\]$/g, ''), port: defaultPort(u), path: `${u.pathname}${u.search}`, ...(https_ ? tlsFor(u.hostname, ca) : {}) });
    if (!proxy) {
      return https_
        ? this.once('direct-https', () => ({ module: https, agent: new https.Agent({ keepAlive: true }), options: direct }))
        : this.once('direct-http', () => ({ module: http, agent: new http.Agent({ keepAlive: true }), options: direct }));
    }
    const p = new URL(proxy);
    if (https_) return this.once(`tunnel ${proxy}`, () => ({ module: https, agent: new TunnelAgent(p, ca), options: direct }));
    // Like curl: an http:// URL goes to the proxy as an absolute-form request.
    const viaTls = p.protocol === 'https:';
    return this.once(`forward ${proxy}`, () => ({
      module: viaTls ? https : http,
      agent: viaTls ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true }),
      options: (u) => ({
        host: p.hostname.replace(/^\[|\]$/g, ''),
        port: defaultPort(p),
        path: u.href,
        headers: { host: u.host, ...proxyAuthorization(p) },
        ...(viaTls ? tlsFor(p.hostname, ca) : {}),
      }),
    }));
  }
}

function send(routes: Routes, req: HttpRequest): Promise<HttpResponse> {
  const url = new URL(req.url);
  const route = routes.for(url);
  const target = route.options(url);
  const headers: Record<string, string> = { ...(target.headers as Record<string, string> | undefined), ...req.headers };
  if (req.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) headers['content-length'] = String(req.body.byteLength);
  return new Promise<HttpResponse>((resolve, reject) => {
    if (req.signal.aborted) {
      reject(req.signal.reason);
      return;
    }
    let response: http.IncomingMessage | undefined;
    // The signal bounds the whole exchange, body included, as it does for fetch.
    const abort = (): void => {
      if (response) response.destroy(req.signal.reason as Error);
      else request.destroy(req.signal.reason as Error);
    };
    const options: TunnelRequestOptions = { ...target, method: req.method, headers, agent: route.agent, [TUNNEL_SIGNAL]: req.signal };
    const request = route.module.request(options, (res) => {
      response = res;
      // Errors while the body is read reach the reader through its iteration; none may go unheard.
      res.on('error', () => undefined);
      res.once('close', () => req.signal.removeEventListener('abort', abort));
      // A HEAD has no body; reading its end frees the connection for the next request.
      if (req.method === 'HEAD') res.resume();
      resolve({
        status: res.statusCode ?? 0,
        headers: {
          get: (name) => {
            const v = res.headers[name.toLowerCase()];
            return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
          },
        },
        body: req.method === 'HEAD' ? null : res,
        discard: async () => {
          res.destroy();
        },
      });
    });
    req.signal.addEventListener('abort', abort, { once: true });
    request.on('error', (err) => {
      req.signal.removeEventListener('abort', abort);
      reject(err);
    });
    request.end(req.body === undefined ? undefined : Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength));
  });
}

/**
 * The client for this environment. The proxy variables and the CA file are read on the first
 * request, so a bad one stops the first command that goes out, with a usage error.
 */
export function nodeHttpClient(env: Env): HttpClient {
  let routes: Routes | undefined;
  return (req) => {
    try {
      routes ??= new Routes(env);
    } catch (err) {
      return Promise.reject(err);
    }
    return send(routes, req);
  };
}
