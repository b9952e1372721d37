// /healthz, /readyz and /metrics: liveness, readiness and Prometheus metrics.
import { Hono } from 'hono';
import type { Logger } from 'pino';
import type { Store } from '../../catalog/store.js';
import { withTimeout } from '../../time.js';
import type { Metrics } from '../metrics.js';
import { type ApiModule, type RouteSpec, errorResponse, serve } from './route.js';
import { HealthSchema } from './schemas.js';

const HEALTHZ: RouteSpec = {
  method: 'get',
  path: '/healthz',
  operationId: 'healthz',
  summary: 'Liveness: the process answers.',
  // Open to anyone who reaches serve: probes reveal nothing about the catalog.
  security: [],
  responses: { 200: { description: 'Alive.', json: HealthSchema } },
};

const READYZ: RouteSpec = {
  method: 'get',
  path: '/readyz',
  operationId: 'readyz',
  summary: 'Readiness: the catalog database answers and the server is not shutting down.',
  security: [],
  responses: { 200: { description: 'Ready.', json: HealthSchema }, 503: { description: 'Not ready.', json: HealthSchema } },
};

const METRICS: RouteSpec = {
  method: 'get',
  path: '/metrics',
  operationId: 'metrics',
  summary: 'Prometheus metrics.',
  description: 'Open when serve listens on loopback; elsewhere only with the --metrics-token as Bearer.',
  // Open on a loopback --listen, else the metrics token.
  security: [{}, { metricsToken: [] }],
  responses: {
    200: { description: 'Text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } },
    401: errorResponse('serve listens on an address others can reach, and the metrics token was not presented.'),
  },
};

export const PROBES_API: ApiModule = { base: '/', routes: [HEALTHZ, READYZ, METRICS] };

interface ProbeOptions {
  store: Pick<Store, 'ping'>;
  metrics: Metrics;
  logger?: Logger;
  /** False while the server shuts down: /readyz answers 503. */
  accepting?: () => boolean;
}

export function probesApi(options: ProbeOptions): Hono {
  const app = new Hono();
  const { store, metrics } = options;
  serve(app, HEALTHZ, (c) => c.json({ status: 'ok' }));
  serve(app, READYZ, async (c) => {
    if (options.accepting && !options.accepting()) return c.json({ status: 'shutting down' }, 503);
    try {
      await withTimeout(store.ping(), 2000);
      return c.json({ status: 'ready' });
    } catch (err) {
      options.logger?.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, 'readiness check failed');
      return c.json({ status: 'catalog database unavailable' }, 503);
    }
  });
  serve(app, METRICS, async (c) => {
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': metrics.registry.contentType });
  });
  return app;
}
