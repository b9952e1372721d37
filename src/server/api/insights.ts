// GET /api/v1/insights and /api/v1/insights.csv: how images are built, by week, as JSON or CSV.
import { type Context, Hono } from 'hono';
import type { BuildEvidence, StoreReader } from '../../catalog/store.js';
import { MAX_INSIGHT_WEEKS } from '../../catalog/paging.js';
import { parseInsightsQuery } from '../params.js';
import { csvFilename, insightsCsv, insightsItem } from '../insights.js';
import { type ApiModule, type ApiParameter, type RouteSpec, SIGN_IN_REQUIRED, errorResponse, serve } from './route.js';
import { scoped } from '../auth/viewer.js';
import { InsightsSchema } from './schemas.js';

function insightsParameters(withFormat: boolean): ApiParameter[] {
  return [
    { name: 'namespace', in: 'query', description: 'Only repositories whose first path segment is this; groups become repositories.', schema: { type: 'string' } },
    { name: 'repository', in: 'query', description: 'Only this repository.', schema: { type: 'string' } },
    { name: 'from', in: 'query', description: `YYYY-MM-DD or RFC 3339; from the Monday of its week. Default: 52 weeks before to. At most ${MAX_INSIGHT_WEEKS} weeks before to.`, schema: { type: 'string' } },
    { name: 'to', in: 'query', description: 'YYYY-MM-DD or RFC 3339; up to the end of its week. Default: now.', schema: { type: 'string' } },
    { name: 'interval', in: 'query', description: 'Only week.', schema: { enum: ['week'], default: 'week' } },
    ...(withFormat ? [{ name: 'format', in: 'query', description: 'json (default) or csv.', schema: { enum: ['json', 'csv'], default: 'json' } } as const] : []),
  ];
}

const CSV = { 'text/csv': { schema: { type: 'string' } } };

const INSIGHTS: RouteSpec = {
  method: 'get',
  path: '/insights',
  operationId: 'insights',
  summary: 'How images are built, by week: builders, where build details come from, media types, multi-platform images.',
  description:
    'Counts and shares per ISO week (Monday, UTC), overall and per namespace (or, with namespace=, per repository). ' +
    'An image is a manifest a tag pointed at, counted once per repository, in the week a tag of that repository first pointed at it. ' +
    'builders.unread counts images whose builder could not be told without their config, which was not read (see sync --read-configs). ' +
    'format=csv (or GET /api/v1/insights.csv) returns the same figures as CSV, one row per week and scope.',
  parameters: insightsParameters(true),
  responses: { 200: { description: 'The report.', json: InsightsSchema, content: CSV }, 400: errorResponse('A bad or unknown parameter; the message names it.'), 401: SIGN_IN_REQUIRED },
};

const INSIGHTS_CSV: RouteSpec = {
  method: 'get',
  path: '/insights.csv',
  operationId: 'insightsCsv',
  summary: 'The insights report as CSV (RFC 4180, a header row; cells that a spreadsheet would read as formulas start with an apostrophe).',
  parameters: insightsParameters(false),
  responses: { 200: { description: 'CSV, as an attachment.', content: CSV }, 400: errorResponse('A bad or unknown parameter; the message names it.'), 401: SIGN_IN_REQUIRED },
};

export const INSIGHTS_API: ApiModule = { base: '/api/v1', routes: [INSIGHTS, INSIGHTS_CSV] };

export function insightsApi(store: StoreReader & Pick<BuildEvidence, 'verifiedInsights'>): Hono {
  const app = new Hono();
  const report = async (c: Context, csvPath: boolean): Promise<Response> => {
    const q = parseInsightsQuery(new URL(c.req.url).searchParams, csvPath);
    const r = await store.insights({
      ...scoped(c),
      ...(q.namespace !== undefined ? { namespace: q.namespace } : {}),
      ...(q.repository !== undefined ? { repository: q.repository } : {}),
      ...(q.from ? { from: q.from } : {}),
      ...(q.to ? { to: q.to } : {}),
    });
    // Verified images and pushers (verifications.ts) ride along in the JSON.
    if (q.format === 'json') {
      const evidence = await store.verifiedInsights({ ...scoped(c), ...(r.namespace !== null ? { namespace: r.namespace } : {}), ...(r.repository !== null ? { repository: r.repository } : {}), from: r.from, to: new Date(r.to.getTime() - 1) });
      return c.json({ ...insightsItem(r), ...evidence });
    }
    return c.body(insightsCsv(r), 200, {
      'content-type': 'text/csv; charset=utf-8; header=present',
      'content-disposition': `attachment; filename="${csvFilename(r)}"`,
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-cache',
    });
  };
  serve(app, INSIGHTS, (c) => report(c, false));
  serve(app, INSIGHTS_CSV, (c) => report(c, true));
  return app;
}
