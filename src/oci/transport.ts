// HTTP to registries: ping and challenge, Basic and Bearer auth, retries with back-off,
// redirects that never carry credentials to another origin, bounded bodies, and a debug log
// with every secret redacted.
import { readBounded } from '../bounded-body.js';
import { AuthError, NetworkError, NotFoundError, RegistryError, UnreadableManifestError, type TagtrailError, isTagtrailError } from '../errors.js';
import { type HttpClient, type HttpHeaders, type HttpResponse, httpFromFetch } from '../net/http.js';
import { isTlsVerificationCode, tlsVerificationError } from '../net/tls-errors.js';
import { realmMayReceiveCredentials, untrustedRealmError } from './auth/binding.js';
import { parseChallenges, type Challenge } from './auth/challenge.js';
import type { Credential, CredentialResolver } from './auth/credentials.js';
import { TokenCache, basicAuthorization, checkRealm, parseTokenResponse, scopeString, tokenFetchError, type Scope } from './auth/token.js';
import { registryBaseUrl } from './reference.js';

interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A Retry-After longer than this is cut down to it. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 5_000, maxRetryAfterMs: 30_000 };

export interface TransportOptions {
  readonly fetch: typeof fetch;
  /** Sends the requests instead of `fetch` when given (the CLI's node:http client, net/node-http.ts). */
  readonly http?: HttpClient;
  readonly credentials: CredentialResolver;
  readonly insecureRegistries?: readonly string[];
  /** Registries (host[:port]) named with https:// by the user: https even on loopback. */
  readonly httpsRegistries?: readonly string[];
  /**
   * Host names besides each registry's own whose token realms may receive Basic credentials
   * (--trusted-realm-host, the configured GitLab servers). See auth/binding.ts.
   */
  readonly trustedRealmHosts?: readonly string[];
  /** Receives one line per request and response; secrets are already redacted. */
  readonly debug?: (line: string) => void;
  readonly retry?: Partial<RetryPolicy>;
  /** Waits between retries; the default one ends early, rejecting, when the signal aborts. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly userAgent?: string;
  /** Per-attempt time limit. */
  readonly timeoutMs?: number;
}

interface RegistryRequest {
  readonly registry: string;
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  /** Path and query, starting with /v2/. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** The scope a Bearer token must grant; none for the ping. */
  readonly scope?: Scope;
  /** Refuse bodies larger than this. */
  readonly maxBodyBytes?: number;
  /** Statuses the caller handles itself (e.g. 404 for HEAD); others become errors. */
  readonly accept?: readonly number[];
  /** Stops the request, its retries and their waits; the request then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

interface SendRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array | undefined;
  readonly maxBodyBytes: number;
  readonly what?: string;
  readonly signal?: AbortSignal;
}

interface RegistryResponse {
  readonly status: number;
  readonly headers: HttpHeaders;
  readonly body: Uint8Array;
  /** The URL that answered, after redirects. */
  readonly url: string;
}

type AuthState = { kind: 'none' } | { kind: 'basic' } | { kind: 'bearer'; realm: string; service: string };

const RETRY_STATUSES = new Set([408, 429, 502, 503, 504]);
/**
 * Methods that may be sent again after a broken connection (RFC 9110 9.2.2): sending them twice
 * leaves the registry as sending them once. A POST (opening a blob upload) is not one of them: a
 * connection that broke may have carried it, and nothing tells whether the registry acted on it.
 */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);
/** Statuses that say the registry did not act on the request, so even a POST may go again. */
const NOT_ACTED_ON_STATUSES = new Set([408, 429, 503]);
const RETRY_ERROR_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ECONNABORTED']);
const MAX_REDIRECTS = 5;
const DEFAULT_MAX_BODY = 4 * 1024 * 1024;
/** Query parameters that are safe to show in a debug log; every other value is redacted. */
const SAFE_QUERY_PARAMS = new Set(['n', 'last', 'scope', 'service', 'digest', 'mount', 'from', 'artifactType']);

/** What requests waiting on a probe see when the probe was aborted by its own caller: they probe again. */
class ProbeAbandoned extends Error {}

/** Waits ms, or rejects with the signal's reason as soon as it aborts. */
function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    for (const k of [...u.searchParams.keys()]) if (!SAFE_QUERY_PARAMS.has(k)) u.searchParams.set(k, 'REDACTED');
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Retry-After: seconds or an HTTP date. */
export function parseRetryAfter(v: string | null, nowMs: number): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - nowMs);
}

/** The registry's error body, {"errors": [{"code", "message"}]}, when it sent one. */
function registryErrors(body: Uint8Array): { codes: string[]; message: string } {
  try {
    const j = JSON.parse(Buffer.from(body).toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
    const errs = Array.isArray(j.errors) ? j.errors : [];
    const codes = errs.map((e) => (typeof e.code === 'string' ? e.code : '')).filter(Boolean);
    const message = errs.map((e) => (typeof e.message === 'string' ? e.message.slice(0, 200) : '')).filter(Boolean).join('; ');
    return { codes, message };
  } catch {
    return { codes: [], message: '' };
  }
}

function readBody(res: HttpResponse, max: number, what: string): Promise<Uint8Array> {
  return readBounded(res.body, res.headers.get('content-length'), max, (declared) =>
    new UnreadableManifestError(`${what} is ${declared !== undefined ? `${declared} bytes, ` : ''}over the ${max}-byte limit`, {
      hint: 'registries refuse manifests over 4 MiB; tagtrail will not read one',
    }),
  );
}

export class Transport {
  private readonly auth = new Map<string, Promise<AuthState>>();
  private readonly tokens: TokenCache;
  private readonly tokenFetches = new Map<string, Promise<string | undefined>>();
  private readonly retry: RetryPolicy;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly http: HttpClient;

  constructor(private readonly opts: TransportOptions) {
    this.http = opts.http ?? httpFromFetch(opts.fetch);
    this.now = opts.now ?? Date.now;
    this.tokens = new TokenCache(this.now);
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.sleep = opts.sleep ?? abortableSleep;
    this.random = opts.random ?? Math.random;
  }

  baseUrl(registry: string): string {
    return registryBaseUrl(registry, this.opts.insecureRegistries, this.opts.httpsRegistries);
  }

  /** The line is made only with --debug on: two URL parses per request otherwise spent on nothing. */
  private log(line: () => string): void {
    this.opts.debug?.(line());
  }

  /** GET /v2/: learns how the registry wants us to authenticate. Once per registry. */
  private authState(registry: string): Promise<AuthState> {
    let p = this.auth.get(registry);
    if (!p) {
      p = this.ping(registry);
      this.auth.set(registry, p);
      p.catch(() => this.auth.delete(registry));
    }
    return p;
  }

  private async ping(registry: string): Promise<AuthState> {
    const res = await this.send(registry, { method: 'GET', url: `${this.baseUrl(registry)}/v2/`, headers: {}, maxBodyBytes: 64 * 1024 });
    if (res.status === 401) return this.stateFromChallenges(registry, parseChallenges(res.headers.get('www-authenticate')));
    if (res.status >= 200 && res.status < 300) return { kind: 'none' };
    if (res.status === 404) {
      throw new RegistryError(`${registry} does not answer the registry API (GET /v2/ gave 404)`, 404, [], { hint: 'check the host name; a registry answers /v2/ with 200 or 401' });
    }
    if (res.status === 400 && res.url.startsWith('http:')) {
      // What a TLS server answers to plain http on its port (Go: "Client sent an HTTP request to an HTTPS server").
      throw new RegistryError(`${registry}: GET /v2/ over plain http was refused (HTTP 400); the registry may serve https`, 400, [], {
        hint: `write the registry with https:// in front (e.g. https://${registry}/group/app:tag or --registry https://${registry}); loopback registries are reached over http otherwise`,
      });
    }
    throw this.statusError(res, `${registry}: GET /v2/`);
  }

  private stateFromChallenges(registry: string, challenges: Challenge[]): AuthState {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      const realm = bearer.params.realm;
      if (!realm) throw new RegistryError(`${registry} asked for a Bearer token but named no realm`, 401);
      checkRealm(realm, this.baseUrl(registry));
      return { kind: 'bearer', realm, service: bearer.params.service ?? '' };
    }
    if (challenges.some((c) => c.scheme === 'basic')) return { kind: 'basic' };
    throw new AuthError('UNAUTHORIZED', `${registry} asked for authentication of a kind tagtrail does not speak`, { hint: 'tagtrail speaks Basic and Bearer token auth' });
  }

  private credential(registry: string): Credential | undefined {
    return this.opts.credentials(registry);
  }

  private async token(registry: string, state: Extract<AuthState, { kind: 'bearer' }>, scope: Scope | undefined): Promise<string | undefined> {
    const sc = scope ?? { type: 'registry', name: 'ping', actions: [] };
    const cached = scope ? this.tokens.get(registry, state.realm, state.service, sc) : undefined;
    if (cached) return cached;
    if (!scope) return this.fetchToken(registry, state, scope, sc);
    // Requests sent at once (a fan-out) share one token fetch for the same scope.
    const key = `${registry} ${state.realm} ${state.service} ${scopeString(sc)}`;
    let pending = this.tokenFetches.get(key);
    if (!pending) {
      pending = this.fetchToken(registry, state, scope, sc).finally(() => this.tokenFetches.delete(key));
      this.tokenFetches.set(key, pending);
    }
    return pending;
  }

  private async fetchToken(registry: string, state: Extract<AuthState, { kind: 'bearer' }>, scope: Scope | undefined, sc: Scope): Promise<string | undefined> {
    const realm = checkRealm(state.realm, this.baseUrl(registry));
    const url = new URL(realm.toString());
    if (state.service) url.searchParams.set('service', state.service);
    if (scope) url.searchParams.append('scope', scopeString(scope));
    const cred = this.credential(registry);
    if (cred && !realmMayReceiveCredentials(realm, registry, this.opts.trustedRealmHosts ?? [])) throw untrustedRealmError(registry, realm, cred.source);
    if (cred?.realmHosts && !cred.realmHosts.includes(url.host.toLowerCase())) {
      throw new AuthError('DENIED', `${registry} sent its token realm to ${url.host}, where tagtrail will not send the credentials from ${cred.source}`, {
        hint: `these credentials go only to ${cred.realmHosts.join(' or ')}`,
      });
    }
    const headers: Record<string, string> = {};
    if (cred) headers.authorization = basicAuthorization(cred);
    const res = await this.send(registry, { method: 'GET', url: url.toString(), headers, maxBodyBytes: 1024 * 1024, what: 'token' });
    if (res.status !== 200) throw tokenFetchError(res.status, url.host, cred);
    const t = parseTokenResponse(Buffer.from(res.body).toString('utf8'));
    if (scope) this.tokens.set(registry, state.realm, state.service, sc, t.token, t.expiresIn);
    return t.token;
  }

  private async authorization(registry: string, state: AuthState, scope: Scope | undefined): Promise<string | undefined> {
    if (state.kind === 'none') return undefined;
    if (state.kind === 'basic') {
      const c = this.credential(registry);
      return c ? basicAuthorization(c) : undefined;
    }
    const t = await this.token(registry, state, scope);
    return t ? `Bearer ${t}` : undefined;
  }

  /**
   * One registry call: auth, one re-authentication on 401, retries, and error mapping.
   *
   * How a registry wants us to authenticate is learnt once. The first GET or HEAD to a registry
   * goes out without credentials and learns it from its own answer (a 401 carries the challenge,
   * a 2xx proves anonymous access), so no separate GET /v2/ costs a round trip; requests sent
   * meanwhile wait for that answer. Any other first request (a PUT, a POST, whose body should go
   * out once) pings GET /v2/ first.
   */
  async request(req: RegistryRequest): Promise<RegistryResponse> {
    for (;;) {
      const pending = this.auth.get(req.registry);
      if (!pending && (req.method === 'GET' || req.method === 'HEAD')) return this.probe(req);
      let state: AuthState;
      try {
        state = await (pending ?? this.authState(req.registry));
      } catch (err) {
        // The probe was aborted by its own caller: that says nothing about this request.
        if (err instanceof ProbeAbandoned) continue;
        throw err;
      }
      return this.requestWith(req, state);
    }
  }

  /** The first GET or HEAD to a registry, sent without credentials: its answer says how to authenticate. */
  private async probe(req: RegistryRequest): Promise<RegistryResponse> {
    let learnt!: (state: AuthState) => void;
    let failed!: (err: unknown) => void;
    const state = new Promise<AuthState>((resolve, reject) => {
      learnt = resolve;
      failed = reject;
    });
    state.catch(() => undefined); // waiting requests see the failure; the probe itself throws it
    this.auth.set(req.registry, state);
    const fail = (err: unknown): never => {
      if (this.auth.get(req.registry) === state) this.auth.delete(req.registry);
      failed(req.signal?.aborted ? new ProbeAbandoned('the probing request was aborted') : err);
      throw err;
    };
    let res: RegistryResponse;
    try {
      res = await this.send(req.registry, this.outgoing(req, { ...req.headers }));
    } catch (err) {
      return fail(err);
    }
    if (res.status === 401) {
      let learned: AuthState;
      try {
        learned = this.stateFromChallenges(req.registry, parseChallenges(res.headers.get('www-authenticate')));
      } catch (err) {
        return fail(err);
      }
      learnt(learned);
      return this.requestWith(req, learned);
    }
    if (res.status >= 200 && res.status < 300) {
      learnt({ kind: 'none' });
      return res;
    }
    // Anything else proves nothing about anonymous access: a registry may hide a private
    // repository from anonymous clients behind a 404 where others answer 401. GET /v2/ says
    // whether it wants credentials (and tells a host that is no registry, or an https registry
    // asked over plain http, from what the request asked for being missing); it costs a request
    // on this path only.
    let pinged: AuthState;
    try {
      pinged = await this.ping(req.registry);
    } catch (err) {
      return fail(err);
    }
    learnt(pinged);
    if (pinged.kind !== 'none') return this.requestWith(req, pinged);
    if (req.accept?.includes(res.status)) return res;
    throw this.statusError(res, `${req.method} ${req.path.split('?')[0]}`);
  }

  private outgoing(req: RegistryRequest, headers: Record<string, string>): SendRequest {
    return {
      method: req.method,
      url: `${this.baseUrl(req.registry)}${req.path}`,
      headers,
      body: req.body,
      maxBodyBytes: req.maxBodyBytes ?? DEFAULT_MAX_BODY,
      what: `${req.method} ${req.path.split('?')[0]}`,
      ...(req.signal ? { signal: req.signal } : {}),
    };
  }

  private async requestWith(req: RegistryRequest, learnt: AuthState): Promise<RegistryResponse> {
    let state = learnt;
    let reauthenticated = false;
    for (;;) {
      const authz = await this.authorization(req.registry, state, req.scope);
      const headers: Record<string, string> = { ...req.headers };
      if (authz) headers.authorization = authz;
      const res = await this.send(req.registry, this.outgoing(req, headers));
      if (res.status === 401 && !reauthenticated) {
        // The token expired or was revoked, or the registry wants auth it did not ask for before.
        reauthenticated = true;
        if (authz?.startsWith('Bearer ')) this.tokens.invalidate(authz.slice(7));
        const challenges = parseChallenges(res.headers.get('www-authenticate'));
        if (challenges.some((c) => c.scheme === 'bearer' && c.params.error === 'insufficient_scope')) {
          if (!this.credential(req.registry)) {
            throw new AuthError('UNAUTHORIZED', `${req.method} ${req.path.split('?')[0]} needs credentials, and none were found for ${req.registry}`, {
              hint: 'log in: --username USER --password-stdin, TAGTRAIL_REGISTRY_USER/PASSWORD, or CI_REGISTRY_USER/PASSWORD in GitLab CI',
            });
          }
          throw new AuthError('DENIED', `${req.method} ${req.path.split('?')[0]} was denied: the token lacks ${req.scope ? req.scope.actions.join(',') : 'the needed'} access`, {
            hint: 'the credentials work but may not do this: annotate needs push access (Developer role, or the job token of this project)',
          });
        }
        if (challenges.length > 0) {
          state = this.stateFromChallenges(req.registry, challenges);
          this.auth.set(req.registry, Promise.resolve(state));
        }
        this.log(() => `re-authenticating with ${req.registry} after 401`);
        continue;
      }
      if ((res.status >= 200 && res.status < 300) || req.accept?.includes(res.status)) return res;
      throw this.statusError(res, `${req.method} ${req.path.split('?')[0]}`);
    }
  }

  private statusError(res: RegistryResponse, what: string): TagtrailError {
    const { codes, message } = registryErrors(res.body);
    const detail = message ? `: ${message}` : '';
    const cred = (() => {
      try {
        return this.credential(new URL(res.url).host);
      } catch {
        return undefined;
      }
    })();
    switch (res.status) {
      case 401:
        return new AuthError('UNAUTHORIZED', `${what} was refused as unauthenticated (HTTP 401)${detail}`, {
          hint: cred ? `check the credentials from ${cred.source}` : 'log in: --username USER --password-stdin, TAGTRAIL_REGISTRY_USER/PASSWORD, or CI_REGISTRY_USER/PASSWORD in GitLab CI',
        });
      case 403:
        return new AuthError('DENIED', `${what} was denied (HTTP 403)${detail}`, { hint: 'the credentials work but lack access: annotate needs push (Developer role or a job token of this project)' });
      case 404:
        return new NotFoundError(`${what}: not found${detail}`, { hint: 'check the repository and tag' });
      default:
        return new RegistryError(`${what} failed with HTTP ${res.status}${detail}`, res.status, codes);
    }
  }

  /** Sends with retries and manual redirects. Returns any final status; throws only on network failure. */
  private async send(registry: string, r: SendRequest): Promise<RegistryResponse> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.retry.maxAttempts; attempt++) {
      try {
        return await this.sendOnce(r);
      } catch (err) {
        if (!(err instanceof RetryableError)) throw err;
        lastError = err;
        if (attempt === this.retry.maxAttempts) break;
        const backoff = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
        const jittered = backoff / 2 + (this.random() * backoff) / 2;
        const wait = err.retryAfterMs !== undefined ? Math.min(this.retry.maxRetryAfterMs, Math.max(err.retryAfterMs, jittered)) : jittered;
        this.log(() => `retry ${attempt}/${this.retry.maxAttempts - 1} of ${r.method} ${redactUrl(r.url)} in ${Math.round(wait)} ms: ${err.message}`);
        await this.sleep(wait, r.signal);
        r.signal?.throwIfAborted();
      }
    }
    const msg = lastError instanceof Error ? lastError.message : String(lastError);
    throw new NetworkError(`${r.what ?? r.method} to ${registry} failed after ${this.retry.maxAttempts} attempts: ${msg}`, {
      hint: 'the registry is overloaded or unreachable; try again later',
    });
  }

  private async sendOnce(r: SendRequest): Promise<RegistryResponse> {
    let method = r.method;
    let url = r.url;
    let body = r.body;
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent ?? 'tagtrail', ...r.headers };
    const origin = new URL(url).origin;
    for (let hop = 0; ; hop++) {
      const started = this.now();
      this.log(() => `--> ${method} ${redactUrl(url)}${headers.authorization ? ` (authorization: ${headers.authorization.split(' ')[0]} REDACTED)` : ''}`);
      let res: HttpResponse;
      try {
        const timeout = AbortSignal.timeout(this.opts.timeoutMs ?? 60_000);
        res = await this.http({ method, url, headers, body, signal: r.signal ? AbortSignal.any([timeout, r.signal]) : timeout });
      } catch (err) {
        if (r.signal?.aborted) throw r.signal.reason;
        // A bad proxy variable or CA file: the user's input, said as such.
        if (isTagtrailError(err)) throw err;
        const code = errorCode(err);
        if (isTlsVerificationCode(code)) throw tlsVerificationError(new URL(url).host, code as string);
        if ((code && RETRY_ERROR_CODES.has(code)) || (err as Error)?.name === 'TimeoutError') {
          if (IDEMPOTENT_METHODS.has(method)) throw new RetryableError(`connection failed (${code ?? 'timeout'})`);
          throw new NetworkError(`${method} ${new URL(url).pathname} to ${new URL(url).host}: the connection failed (${code ?? 'timeout'}) before an answer`, {
            hint: `a ${method} is not sent again, since the registry may already have acted on it; try again`,
          });
        }
        throw new NetworkError(`cannot reach ${new URL(url).host}: ${code ?? (err instanceof Error ? err.message : String(err))}`, {
          hint: url.startsWith('https:') ? 'check the host and port; for a registry served over plain http, add --insecure-registry HOST' : 'check the host and port',
        });
      }
      if ([301, 302, 303, 307, 308].includes(res.status)) {
        await res.discard();
        const location = res.headers.get('location');
        if (!location || hop >= MAX_REDIRECTS) throw new RegistryError(`too many or empty redirects from ${new URL(url).host}`, res.status);
        const next = new URL(location, url);
        if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new RegistryError(`redirect to a ${next.protocol} URL refused`, res.status);
        if (new URL(url).protocol === 'https:' && next.protocol === 'http:') throw new RegistryError('redirect from https to plain http refused', res.status);
        this.log(() => `<-- ${res.status} redirect to ${redactUrl(next.toString())}`);
        // Credentials never follow a redirect to another origin (blob storage, a CDN, anyone).
        if (next.origin !== origin) delete headers.authorization;
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method !== 'GET' && method !== 'HEAD')) {
          method = 'GET';
          body = undefined;
        }
        url = next.toString();
        continue;
      }
      let bytes: Uint8Array;
      try {
        bytes = method === 'HEAD' ? new Uint8Array(0) : await readBody(res, r.maxBodyBytes, `the response to ${method} ${new URL(url).pathname}`);
      } catch (err) {
        if (err instanceof UnreadableManifestError) throw err;
        if (r.signal?.aborted) throw r.signal.reason;
        const broke = `the connection broke while reading the body (${errorCode(err) ?? 'terminated'})`;
        // The registry answered, so it acted on the request: only a request that may go twice goes again.
        if (IDEMPOTENT_METHODS.has(method)) throw new RetryableError(broke);
        throw new NetworkError(`${method} ${new URL(url).pathname} to ${new URL(url).host}: ${broke} (HTTP ${res.status})`, {
          hint: `a ${method} is not sent again, since the registry acted on it; try again`,
        });
      }
      this.log(() => `<-- ${res.status} ${method} ${redactUrl(url)} (${bytes.byteLength} bytes, ${this.now() - started} ms)`);
      if (RETRY_STATUSES.has(res.status) && (IDEMPOTENT_METHODS.has(method) || NOT_ACTED_ON_STATUSES.has(res.status))) {
        throw new RetryableError(`HTTP ${res.status}`, res.status === 429 || res.status === 503 ? parseRetryAfter(res.headers.get('retry-after'), this.now()) : undefined);
      }
      return { status: res.status, headers: res.headers, body: bytes, url };
    }
  }
}
