// The fetch of the command line (GitLab's API, OIDC, --report): undici's own fetch with a dispatcher that honours the proxy variables by curl's
// rules (proxy.ts) and trusts an internal CA from TAGTRAIL_CA_FILE on top of the default roots
// (ca.ts). Node's global fetch ignores proxy variables, and mixing its bundled undici with this
// package's dispatcher is not supported, so callers take the fetch returned here. Every command's
// registry requests go through node-http.ts instead, by the same rules.
//
// There is no way to turn TLS verification off, on purpose: trust the CA instead.
import { Agent, Dispatcher, ProxyAgent, fetch as undiciFetch } from 'undici';
import { trustedCertificates } from './ca.js';
import { bypassesProxy, proxySettingsFromEnv, type ProxySettings } from './proxy.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Routes each request to a direct agent or to the proxy for its scheme, as NO_PROXY says. */
class ProxyRouter extends Dispatcher {
  private readonly direct: Agent;
  private readonly viaHttp: Dispatcher;
  private readonly viaHttps: Dispatcher;

  constructor(
    private readonly settings: ProxySettings,
    ca: string[] | undefined,
  ) {
    super();
    const tls = ca ? { ca } : {};
    // Like curl: http:// URLs go to the proxy as absolute-form requests, https:// ones through CONNECT.
    this.direct = new Agent({ connect: tls });
    this.viaHttp = settings.http ? new ProxyAgent({ uri: settings.http, proxyTls: tls, proxyTunnel: false }) : this.direct;
    this.viaHttps = settings.https ? new ProxyAgent({ uri: settings.https, requestTls: tls, proxyTls: tls }) : this.direct;
  }

  private pick(origin: string | URL): Dispatcher {
    const url = new URL(origin);
    if (bypassesProxy(url.hostname, this.settings.noProxy)) return this.direct;
    return url.protocol === 'https:' ? this.viaHttps : this.viaHttp;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.pick(options.origin as string | URL).dispatch(options, handler);
  }

  private all(): Dispatcher[] {
    return [...new Set([this.direct, this.viaHttp, this.viaHttps])];
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const done = Promise.all(this.all().map((d) => d.close())).then(() => undefined);
    if (callback) void done.then(callback);
    else return done;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    const callback = typeof a === 'function' ? a : b;
    const done = Promise.all(this.all().map((d) => d.destroy(err))).then(() => undefined);
    if (callback) void done.then(callback);
    else return done;
  }
}

/** The dispatcher for this environment: proxies by curl's rules, roots plus TAGTRAIL_CA_FILE. */
function createDispatcher(env: Env): Dispatcher {
  return new ProxyRouter(proxySettingsFromEnv(env), trustedCertificates(env));
}

/**
 * A fetch for this environment. The dispatcher is made on the first request, so a bad proxy
 * variable or CA file stops the first command that goes out, with a usage error, and commands
 * that never touch the network never read them.
 */
export function networkFetch(env: Env): typeof fetch {
  let dispatcher: Dispatcher | undefined;
  const send = (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
    dispatcher ??= createDispatcher(env);
    return undiciFetch(input as Parameters<typeof undiciFetch>[0], { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher }) as unknown as Promise<Response>;
  };
  return send as typeof fetch;
}
