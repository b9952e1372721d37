// The hono app of `tagtrail serve`: the JSON API, the registry webhook, health, metrics and the
// OpenAPI document. Stateless: everything lives in the store, so several processes can serve
// one PostgreSQL catalog. The browser UI mounts itself through `ui`.
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Logger } from 'pino';
import { StoreError, httpStatusFor, isTagtrailError } from '../errors.js';
import type { Store } from '../catalog/store.js';
import { DEFAULT_GITLAB_URL, type GitlabServer, parseGitlabUrls } from './ui/links.js';
import { Metrics } from './metrics.js';
import { API_MODULES } from './api/index.js';
import { type WebhookOptions, eventsApi } from './api/events.js';
import { imagesApi } from './api/images.js';
import { insightsApi } from './api/insights.js';
import { openApiApi } from './api/openapi.js';
import { probesApi } from './api/probes.js';
import { repositoriesApi } from './api/repositories.js';
import { routePatternLabel } from './api/route.js';
import { type BuildReportOptions, buildsApp } from './builds.js';
import { type GitlabEventsOptions, gitlabEventsApp } from './gitlab-events.js';

export type { WebhookOptions };

interface AppOptions {
  store: Store;
  /** Without it the webhook answers 404: it never runs unauthenticated. */
  webhook?: WebhookOptions;
  logger?: Logger;
  metrics?: Metrics;
  /** False while the server shuts down: /readyz answers 503. */
  accepting?: () => boolean;
  /** Mounts the browser UI (routes outside /api/, /healthz, /readyz and /metrics). */
  ui?: (app: Hono) => void;
  /** GitLab's Pipeline and Job events as the event feed (gitlab-events.ts). */
  gitlabEvents?: GitlabEventsOptions;
  /** Build reports verified against GitLab ID tokens (builds.ts); off without a public URL. */
  builds?: BuildReportOptions;
  /** The clock; default the system's. */
  now?: () => Date;
  /** The GitLab servers whose URLs the API gives as links (as the browser links them); default https://gitlab.com. */
  gitlabServers?: readonly GitlabServer[];
  /** Run before every route, in order: the Host check, /metrics, sign-in (server/auth/). */
  guards?: readonly MiddlewareHandler[];
  /** Routes of its own before the rest (sign-in and sign-out). */
  routes?: (app: Hono) => void;
}

const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

function isCatchAll(path: string): boolean {
  return path === '*' || path === '/*';
}

/**
 * The metrics label of a request: the pattern of the route that answered it, never the URL (a
 * label per digest would grow without end). The middleware and the browser's HTML 404 match every
 * path, so they are skipped: when a guard answers (401, 421), the route the request was for still
 * names it. Only a path no route serves is `unmatched`.
 */
function routeLabel(c: Context): string {
  const routes = matchedRoutes(c);
  const answered = routes[c.req.routeIndex];
  const route = answered && !isCatchAll(answered.path) ? answered : routes.find((r) => !isCatchAll(r.path));
  return route ? routePatternLabel(route.path) : 'unmatched';
}

interface ErrorBody {
  error: { code: string; message: string };
}

function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

export function createApp(options: AppOptions): Hono {
  const { store } = options;
  const servers = options.gitlabServers ?? parseGitlabUrls([DEFAULT_GITLAB_URL]);
  const metrics = options.metrics ?? new Metrics({ defaultMetrics: false });
  const log = options.logger;
  const app = new Hono();

  // Every answer declares its type for good: a JSON body (API, errors, probes) echoes names and
  // annotation values someone else wrote, and must never be sniffed into HTML.
  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set('X-Content-Type-Options', 'nosniff');
  });

  // Metrics and one log line per request. Only the path is logged: never headers or bodies.
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const route = routeLabel(c);
    metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.httpDuration.observe({ method: c.req.method, route }, seconds);
    const fields = { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(seconds * 1000) };
    // Probes and scrapes come every few seconds: logged only at debug level.
    if (PROBES.has(c.req.path)) log?.debug(fields, 'request');
    else log?.info(fields, 'request');
  });

  app.onError((err, c) => {
    if (isTagtrailError(err)) {
      const status = httpStatusFor(err);
      if (status >= 500) log?.error({ err: { code: err.code, message: err.message } }, 'request failed');
      // A database error's text may describe the schema; the client gets a plain sentence.
      const message = err instanceof StoreError ? 'the catalog database failed; see the server log' : err.message;
      return c.json(errorBody(err.code, message), status as 400);
    }
    log?.error({ err: { message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined } }, 'unexpected error');
    return c.json(errorBody('INTERNAL', 'internal server error; see the server log'), 500);
  });

  for (const guard of options.guards ?? []) app.use('*', guard);
  options.routes?.(app);

  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no such endpoint: ${c.req.method} ${c.req.path.slice(0, 200)}`), 404));

  app.route('/', probesApi({ store, metrics, ...(log ? { logger: log } : {}), ...(options.accepting ? { accepting: options.accepting } : {}) }));
  app.route('/api/v1', openApiApi(() => API_MODULES));
  app.route('/api/v1', repositoriesApi(store, servers));
  app.route('/api/v1', imagesApi(store, servers));
  app.route('/api/v1', insightsApi(store));
  app.route('/api/v1', eventsApi({ store, metrics, now: options.now ?? (() => new Date()), ...(options.webhook ? { webhook: options.webhook } : {}), ...(log ? { logger: log } : {}) }));
  app.route('/api/v1', gitlabEventsApp(options.gitlabEvents));
  app.route('/api/v1', buildsApp(store, options.builds));

  options.ui?.(app);
  return app;
}
