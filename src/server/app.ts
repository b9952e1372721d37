// The hono app of `tagtrail serve`: the JSON API, the registry webhook, health, metrics and the
// OpenAPI document. Stateless: everything lives in the store, so several processes can serve
// one PostgreSQL catalog. The browser UI mounts itself through `ui`.
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Logger } from 'pino';
import { NotFoundError, RegistryError, StoreError, UsageError, httpStatusFor, isTagtrailError } from '../errors.js';
import { parseEnvelopeText } from '../catalog/events.js';
import { Ingestor } from '../catalog/ingest.js';
import { createLimiter } from '../catalog/limit.js';
import type { Store } from '../catalog/store.js';
import type { RegistryClient } from '../oci/registry.js';
import { isValidDigest, isValidRepository, isValidTag } from '../oci/reference.js';
import { imageDetail, imageItem, repositoryItem, tagHistoryItem } from './views.js';
import { Metrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { parseImageQuery, parseInsightsQuery, parseListQuery, parseRepositoryQuery } from './params.js';
import { csvFilename, insightsCsv, insightsItem } from './insights.js';
import { DEFAULT_MAX_EVENT_BYTES, applyEvents, checkContentType, readBodyText, secretChecker } from './webhook.js';
import { withTimeout } from '../time.js';
import { readScopeOf, scoped } from './auth/viewer.js';

export interface WebhookOptions {
  /** The shared secret registries send in the Authorization header (bare or as Bearer). */
  secret: string;
  /** Reads the manifests the events name, from `registry` only: an event's own url is never used. */
  client: RegistryClient;
  /** host[:port] of the registry. */
  registry: string;
  /** Largest body accepted; default 1 MiB. */
  maxBodyBytes?: number;
  /** Manifest reads in flight at most, across requests. Default 8. */
  concurrency?: number;
  /** Read every new image config once for builder evidence. */
  readConfigs?: boolean;
}

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
  /** Run before every route, in order: the Host check, /metrics, sign-in (server/auth/). */
  guards?: readonly MiddlewareHandler[];
  /** Routes of its own before the rest (sign-in and sign-out). */
  routes?: (app: Hono) => void;
}

const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

interface ErrorBody {
  error: { code: string; message: string };
}

function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

export function createApp(options: AppOptions): Hono {
  const { store } = options;
  const metrics = options.metrics ?? new Metrics({ defaultMetrics: false });
  const log = options.logger;
  const app = new Hono();

  // Metrics and one log line per request. Only the path is logged: never headers or bodies.
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const matched = routePath(c, -1);
    const route = matched === '*' || matched === '/*' ? 'unmatched' : matched;
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

  // ---- health and metrics

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', async (c) => {
    if (options.accepting && !options.accepting()) return c.json({ status: 'shutting down' }, 503);
    try {
      await withTimeout(store.ping(), 2000);
      return c.json({ status: 'ready' });
    } catch (err) {
      log?.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, 'readiness check failed');
      return c.json({ status: 'catalog database unavailable' }, 503);
    }
  });

  app.get('/metrics', async (c) => {
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': metrics.registry.contentType });
  });

  // ---- API

  app.get('/api/v1/openapi.json', (c) => c.json(openApiDocument()));

  app.get('/api/v1/repositories', async (c) => {
    const q = parseRepositoryQuery(new URL(c.req.url).searchParams);
    const page = await store.listRepositories({ ...q, ...scoped(c) });
    return c.json({ items: page.items.map(repositoryItem), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) });
  });

  // Repository names have slashes: /api/v1/repositories/group/app/tags[/TAG/history].
  app.get('/api/v1/repositories/:path{.+}', async (c) => {
    const path = c.req.param('path');
    const history = /^(.+)\/tags\/([^/]+)\/history$/.exec(path);
    if (history) {
      const repository = checkRepositoryPath(history[1] as string);
      const tag = decodeURIComponent(history[2] as string);
      if (!isValidTag(tag)) throw new UsageError(`tag ${JSON.stringify(tag.slice(0, 130))} in the path is not a valid tag`);
      const h = await store.tagHistory(repository, tag, readScopeOf(c));
      if (!h) throw new NotFoundError(`no tag ${repository}:${tag} in the catalog`);
      return c.json(tagHistoryItem(h));
    }
    const tags = /^(.+)\/tags$/.exec(path);
    if (tags) {
      const repository = checkRepositoryPath(tags[1] as string);
      const page = await store.listTags(repository, { ...parseListQuery(new URL(c.req.url).searchParams), ...scoped(c) });
      return c.json({ items: page.items.map(imageItem), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) });
    }
    throw new NotFoundError(`no such endpoint: GET ${c.req.path.slice(0, 200)}`, { hint: 'try /api/v1/repositories/NAME/tags or /api/v1/repositories/NAME/tags/TAG/history' });
  });

  app.get('/api/v1/images', async (c) => {
    const query = parseImageQuery(new URL(c.req.url).searchParams);
    const page = await store.searchImages({ ...query, ...scoped(c) });
    return c.json({ items: page.items.map(imageItem), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) });
  });

  app.get('/api/v1/images/:digest', async (c) => {
    const digest = c.req.param('digest');
    if (!isValidDigest(digest)) {
      throw new UsageError(`digest ${JSON.stringify(digest.slice(0, 140))} in the path is not sha256:<64 hex> or sha512:<128 hex>`);
    }
    const detail = await store.getImage(digest, readScopeOf(c));
    if (!detail) throw new NotFoundError(`no image ${digest} in the catalog`);
    return c.json(await imageDetail(store, detail));
  });

  // How images are built, by week: JSON, or CSV with ?format=csv or at /api/v1/insights.csv.
  const insights = async (c: Context, csvPath: boolean): Promise<Response> => {
    const q = parseInsightsQuery(new URL(c.req.url).searchParams, csvPath);
    const report = await store.insights({
      ...scoped(c),
      ...(q.namespace !== undefined ? { namespace: q.namespace } : {}),
      ...(q.repository !== undefined ? { repository: q.repository } : {}),
      ...(q.from ? { from: q.from } : {}),
      ...(q.to ? { to: q.to } : {}),
    });
    if (q.format === 'json') return c.json(insightsItem(report));
    return c.body(insightsCsv(report), 200, {
      'content-type': 'text/csv; charset=utf-8; header=present',
      'content-disposition': `attachment; filename="${csvFilename(report)}"`,
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-cache',
    });
  };
  app.get('/api/v1/insights', (c) => insights(c, false));
  app.get('/api/v1/insights.csv', (c) => insights(c, true));

  // ---- the webhook

  const webhook = options.webhook;
  if (webhook) {
    const check = secretChecker(webhook.secret);
    const maxBytes = webhook.maxBodyBytes ?? DEFAULT_MAX_EVENT_BYTES;
    const ingestor = new Ingestor({
      client: webhook.client,
      store,
      registry: webhook.registry,
      limit: createLimiter(webhook.concurrency ?? 8),
      readConfigs: webhook.readConfigs === true,
      onRead: (what) => metrics.registryReads.inc({ what, source: 'webhook' }),
      onWarning: (message) => log?.warn({ message }, 'referrer ignored'),
    });
    app.post('/api/v1/events', async (c) => {
      if (!check(c.req.header('authorization'))) {
        metrics.webhookEnvelopes.inc({ result: 'unauthorized' });
        log?.warn({ path: c.req.path }, 'webhook call with a missing or wrong secret');
        c.header('www-authenticate', 'Bearer realm="tagtrail"');
        return c.json(errorBody('UNAUTHORIZED', 'missing or wrong webhook secret in the Authorization header'), 401);
      }
      let events;
      try {
        checkContentType(c.req.header('content-type'));
        const text = await readBodyText(c.req.raw, maxBytes);
        events = parseEnvelopeText(text);
      } catch (err) {
        metrics.webhookEnvelopes.inc({ result: 'rejected' });
        throw err;
      }
      try {
        const result = await applyEvents(events.events, {
          store,
          ingestor,
          onEvent: (e, outcome) => metrics.webhookEvents.inc({ kind: e.kind, outcome }),
          onUnreadable: (e, err) =>
            log?.warn({ repository: e.repository, digest: e.kind === 'tag-push' ? e.digest : undefined, err: { message: err instanceof Error ? err.message : String(err) } }, 'pushed manifest could not be read'),
        });
        if (events.ignored > 0) metrics.webhookEvents.inc({ kind: 'ignored', outcome: 'ignored' }, events.ignored);
        metrics.webhookEnvelopes.inc({ result: 'accepted' });
        log?.info({ events: events.events.length, ignored: events.ignored, ...result }, 'notification applied');
        return c.json({ events: events.events.length, ignored: events.ignored, ...result });
      } catch (err) {
        metrics.webhookEnvelopes.inc({ result: 'failed' });
        if (err instanceof RegistryError) log?.warn({ err: { message: err.message } }, 'notification not applied; the registry will resend it');
        throw err;
      }
    });
  } else {
    app.post('/api/v1/events', () => {
      throw new NotFoundError('the webhook is off', { hint: 'start tagtrail serve with --registry and --webhook-secret (or TAGTRAIL_WEBHOOK_SECRET)' });
    });
  }

  options.ui?.(app);
  return app;
}

function checkRepositoryPath(raw: string): string {
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    name = raw;
  }
  if (!isValidRepository(name)) throw new UsageError(`repository ${JSON.stringify(name.slice(0, 260))} in the path is not a valid repository name`);
  return name;
}

