// POST /api/v1/events: the registry webhook (webhook.ts applies the events). Off without a
// secret: it then answers 404 and never runs unauthenticated.
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { NotFoundError, RegistryError } from '../../errors.js';
import { parseEnvelopeText } from '../../catalog/events.js';
import { Ingestor } from '../../catalog/ingest.js';
import { batchedTagPushes } from '../../catalog/push-batch.js';
import { createLimiter } from '../../catalog/limit.js';
import type { Store } from '../../catalog/store.js';
import type { RegistryClient } from '../../oci/registry.js';
import type { Metrics } from '../metrics.js';
import { DEFAULT_MAX_EVENT_BYTES, applyEvents, checkContentType, readBodyText, secretChecker } from '../webhook.js';
import { type ApiModule, type RouteSpec, errorResponse, serve } from './route.js';
import { EventsResultSchema } from './schemas.js';

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

const REGISTRY_EVENTS: RouteSpec = {
  method: 'post',
  path: '/events',
  operationId: 'registryEvents',
  summary: 'Registry notifications (CNCF distribution and GitLab container registry).',
  description:
    'Takes a notification envelope. Authenticated by the shared secret in the Authorization header, bare or as "Bearer SECRET". ' +
    'Tag pushes, tag deletes and manifest deletes change the catalog; other events are ignored. Idempotent. ' +
    "An event's target.url is never fetched: manifests are read from tagtrail's configured registry.",
  security: [{ webhookSecret: [] }, { webhookBearer: [] }],
  requestBody: {
    required: true,
    content: {
      'application/vnd.docker.distribution.events.v1+json': { schema: { $ref: '#/components/schemas/Envelope' } },
      'application/json': { schema: { $ref: '#/components/schemas/Envelope' } },
    },
  },
  responses: {
    200: { description: 'Applied.', json: EventsResultSchema },
    400: errorResponse('Not a valid envelope; nothing was stored.'),
    401: errorResponse('Missing or wrong secret.'),
    404: errorResponse('The webhook is off (serve runs without a secret).'),
    413: errorResponse('The body is over the size limit.'),
    502: errorResponse('The registry could not be read; the registry sends the event again.'),
  },
};

export const EVENTS_API: ApiModule = { base: '/api/v1', routes: [REGISTRY_EVENTS] };

interface EventsOptions {
  store: Store;
  webhook?: WebhookOptions;
  metrics: Metrics;
  logger?: Logger;
  now: () => Date;
}

export function eventsApi(options: EventsOptions): Hono {
  const app = new Hono();
  const { store, webhook, metrics } = options;
  const log = options.logger;
  if (!webhook) {
    serve(app, REGISTRY_EVENTS, () => {
      throw new NotFoundError('the webhook is off', { hint: 'start tagtrail serve with --registry and --webhook-secret (or TAGTRAIL_WEBHOOK_SECRET)' });
    });
    return app;
  }
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
  // One per serve: pushes from concurrent envelopes share transactions.
  const pushTag = batchedTagPushes(store, { onBatch: (pushes) => metrics.webhookPushBatches.observe(pushes) });
  serve(app, REGISTRY_EVENTS, async (c) => {
    if (!check(c.req.header('authorization'))) {
      metrics.webhookEnvelopes.inc({ result: 'unauthorized' });
      log?.warn({ path: c.req.path }, 'webhook call with a missing or wrong secret');
      c.header('www-authenticate', 'Bearer realm="tagtrail"');
      return c.json({ error: { code: 'UNAUTHORIZED', message: 'missing or wrong webhook secret in the Authorization header' } }, 401);
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
        pushTag,
        receivedAt: options.now(),
        onEvent: (e, outcome) => metrics.webhookEvents.inc({ kind: e.kind, outcome }),
        onUnreadable: (e, err) =>
          log?.warn({ repository: e.repository, digest: e.kind === 'tag-push' ? e.digest : undefined, err: { message: err instanceof Error ? err.message : String(err) } }, 'pushed manifest could not be read'),
      });
      if (events.ignored > 0) metrics.webhookEvents.inc({ kind: 'ignored', outcome: 'ignored' }, events.ignored);
      if (result.clamped > 0) log?.warn({ clamped: result.clamped }, 'events dated more than 5 minutes ahead were recorded at their receipt');
      metrics.webhookEnvelopes.inc({ result: 'accepted' });
      log?.info({ events: events.events.length, ignored: events.ignored, ...result }, 'notification applied');
      return c.json({ events: events.events.length, ignored: events.ignored, ...result });
    } catch (err) {
      metrics.webhookEnvelopes.inc({ result: 'failed' });
      if (err instanceof RegistryError) log?.warn({ err: { message: err.message } }, 'notification not applied; the registry will resend it');
      throw err;
    }
  });
  return app;
}
