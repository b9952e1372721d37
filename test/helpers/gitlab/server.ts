// A GitLab stand-in: one HTTP server on 127.0.0.1 with the REST API routes tagtrail reads
// (rest.ts) and the container registry's token realm at /jwt/auth, in front of a real registry
// (helpers/registry.ts) configured with this realm. Users, tokens, groups, projects and
// repositories live in a GitlabModel that a test sets up and changes.
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from '../ports.js';
import { type TokenIssuerOptions, type TokenService, createTokenService } from '../token-issuer.js';
import { ACCESS_LEVEL, type GroupSpec, GitlabModel, type ProjectSpec, type TokenScope, type TokenSpec, type UserSpec } from './model.js';
import { type IdTokenSpec, createSigningKey, mintIdToken } from './id-tokens.js';
import { type OidcClientSpec, type OidcProvider, createOidcProvider } from './openid-provider.js';
import { MAX_PER_PAGE } from './pagination.js';
import { registerRestRoutes } from './rest.js';
import { type JobEventSpec, type PipelineEventSpec, deliver, jobEvent, pipelineEvent } from './webhooks.js';
import { type Handler, Router, send } from './router.js';

export interface GitlabRequestRecord {
  seq: number;
  method: string;
  /** Path and query as sent. */
  url: string;
  /** Path without the query, still percent-encoded. */
  path: string;
  headers: IncomingHttpHeaders;
  status?: number;
}

export interface GitlabStandInOptions {
  users?: UserSpec[];
  tokens?: TokenSpec[];
  groups?: GroupSpec[];
  projects?: ProjectSpec[];
  /** host[:port] the repositories' `location` names; set later with setRegistryHost(). */
  registryHost?: string;
  /** The largest per_page served; default 100 as on GitLab. */
  maxPerPage?: number;
  /** OAuth applications people sign in to tagtrail with (openid-provider.ts). */
  oidcClients?: OidcClientSpec[];
  /** For the token realm: lifetime, service, issuer, key header (see token-issuer.ts). */
  realmOptions?: Omit<TokenIssuerOptions, 'users' | 'authenticate' | 'publicRepositories'>;
}

export interface GitlabStandIn {
  /** http://127.0.0.1:PORT: the server's base URL, as --gitlab-url takes it. */
  url: string;
  host: string;
  /** http://127.0.0.1:PORT/jwt/auth, for the registry's auth.token.realm. */
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  model: GitlabModel;
  /** The token realm's own record: issued() and requests (user, scopes, granted). */
  tokenService: TokenService;
  /** Every request, in arrival order; reset() clears it and the realm's own record. */
  requests: GitlabRequestRecord[];
  count(filter?: (r: GitlabRequestRecord) => boolean): number;
  reset(): void;
  setRegistryHost(host: string): void;
  setMaxPerPage(n: number): void;
  /**
   * The next `times` REST API requests answer 429 with Retry-After: seconds, as GitLab's rate
   * limits do (https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits/#response-headers).
   */
  rateLimit(times: number, retryAfterSeconds: number): void;
  /** More routes (OIDC discovery, JWKS, webhooks, …); tried after the built-in ones. */
  route(method: string, pattern: RegExp, handler: Handler): void;
  /** A CI ID token signed with the key /oauth/discovery/keys publishes (id-tokens.ts); its iss is `url`. */
  issueIdToken(spec: IdTokenSpec): Promise<string>;
  /** Sends a Pipeline Hook or Job Hook delivery to a webhook URL (webhooks.ts). */
  sendPipelineEvent(url: string, token: string | undefined, spec: PipelineEventSpec): Promise<Response>;
  sendJobEvent(url: string, token: string | undefined, spec: JobEventSpec): Promise<Response>;
  stop(): Promise<void>;
}

/** Registry scopes that let a token pull (https://docs.gitlab.com/user/packages/container_registry/authenticate_with_container_registry/). */
const REGISTRY_SCOPES: readonly TokenScope[] = ['read_registry', 'write_registry'];

export async function startGitlab(options: GitlabStandInOptions = {}): Promise<GitlabStandIn> {
  const model = new GitlabModel();
  for (const u of options.users ?? []) model.addUser(u);
  for (const t of options.tokens ?? []) model.addToken(t);
  for (const g of options.groups ?? []) model.addGroup(g);
  for (const p of options.projects ?? []) model.addProject(p);
  let registryHost = options.registryHost ?? 'registry.invalid';
  let maxPerPage = options.maxPerPage ?? MAX_PER_PAGE;
  let rateLimited = 0;
  let rateLimitSeconds = 1;

  // /jwt/auth (https://docs.gitlab.com/user/packages/container_registry/authenticate_with_container_registry/):
  // an access token with read_registry is the password (GitLab does not check the user name that
  // goes with it); pull is granted on repositories of projects the token's user may read, push
  // with write_registry and Developer; registry:catalog:* only to an administrator.
  const tokenService = await createTokenService({
    ...options.realmOptions,
    authenticate: (_user, password) => {
      const found = model.tokenUser(password);
      if (!found || !found.token.scopes.some((s) => REGISTRY_SCOPES.includes(s))) return undefined;
      const { user, token } = found;
      return {
        password: '',
        catalog: user.admin,
        access: (repository) => {
          const project = model.projectOfRepository(repository);
          if (!project || !model.canReadRegistry(user, project)) return [];
          const canPush = token.scopes.includes('write_registry') && (user.admin || model.role(user, project.path, project.members) >= ACCESS_LEVEL.developer);
          return canPush ? ['pull', 'push'] : ['pull'];
        },
      };
    },
    publicRepositories: (repository) => {
      const project = model.projectOfRepository(repository);
      return project !== undefined && model.canReadRegistry(undefined, project);
    },
  });

  const router = new Router();
  registerRestRoutes(router, { model, registryHost: () => registryHost, maxPerPage: () => maxPerPage });
  router.get(/^\/jwt\/auth$/, ({ req, res, url }) => {
    tokenService.handle(req, res, url);
    return 'handled';
  });

  const requests: GitlabRequestRecord[] = [];
  let seq = 0;
  let origin = '';
  // One key for the one issuer: sign-in ID tokens (oidc-provider) and CI ID tokens (jose).
  const signingKey = await createSigningKey();
  // Made once the origin is known (it is the issuer); requests before that cannot arrive.
  let oidc: OidcProvider | undefined = undefined;
  const server = createServer((req, res) => {
    const rawUrl = req.url ?? '/';
    const path = rawUrl.split('?')[0] ?? '/';
    const record: GitlabRequestRecord = { seq: ++seq, method: req.method ?? 'GET', url: rawUrl, path, headers: req.headers };
    requests.push(record);
    res.once('finish', () => {
      record.status = res.statusCode;
    });
    // The OpenID Connect provider reads its own request bodies.
    if (oidc?.handles(path)) {
      oidc.handle(req, res);
      return;
    }
    req.resume();
    const head = req.method === 'HEAD';
    if (path.startsWith('/api/') && rateLimited > 0) {
      rateLimited--;
      // Rack::Attack's throttled answer: text "Retry later" with the RateLimit-* headers.
      const reset = Math.floor(Date.now() / 1000) + rateLimitSeconds;
      send(res, {
        status: 429,
        headers: {
          'retry-after': String(rateLimitSeconds),
          'ratelimit-name': 'throttle_authenticated_api',
          'ratelimit-limit': '60',
          'ratelimit-observed': '61',
          'ratelimit-remaining': '0',
          'ratelimit-reset': String(reset),
          'ratelimit-resettime': new Date(reset * 1000).toUTCString(),
        },
        body: 'Retry later\n',
      }, head);
      return;
    }
    const found = router.find(record.method, path);
    if (!found) {
      // GitLab's answer for an unknown API route.
      send(res, { status: 404, body: { error: '404 Not Found' } }, head);
      return;
    }
    const url = new URL(rawUrl, origin);
    Promise.resolve(found.handler({ req, res, url, match: found.match }))
      .then((reply) => {
        if (reply !== 'handled') send(res, reply, head);
      })
      .catch((err: unknown) => {
        if (!res.headersSent) send(res, { status: 500, body: { message: `500 Internal Server Error: ${err instanceof Error ? err.message : String(err)}` } }, head);
        else res.destroy();
      });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, () => resolve());
    });
  } catch (err) {
    await tokenService.dispose();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const host = `${LOOPBACK}:${port}`;
  origin = `http://${host}`;
  oidc = createOidcProvider(origin, model, options.oidcClients ?? [], signingKey);

  return {
    url: origin,
    host,
    realm: `${origin}/jwt/auth`,
    service: tokenService.service,
    issuer: tokenService.issuer,
    certPath: tokenService.certPath,
    model,
    tokenService,
    requests,
    count: (filter) => (filter ? requests.filter(filter).length : requests.length),
    reset: () => {
      requests.length = 0;
      tokenService.requests.length = 0;
    },
    setRegistryHost: (h) => {
      registryHost = h;
    },
    setMaxPerPage: (n) => {
      maxPerPage = n;
    },
    rateLimit: (times, seconds) => {
      rateLimited = times;
      rateLimitSeconds = seconds;
    },
    route: (method, pattern, handler) => router.add(method, pattern, handler),
    issueIdToken: (spec) => mintIdToken(signingKey, model, origin, spec),
    sendPipelineEvent: (url, token, spec) => deliver(url, token, pipelineEvent(model, origin, spec), origin),
    sendJobEvent: (url, token, spec) => deliver(url, token, jobEvent(model, origin, spec), origin),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await tokenService.dispose();
    },
  };
}
