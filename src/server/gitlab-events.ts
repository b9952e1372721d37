// POST /api/v1/gitlab/events: GitLab's Pipeline and Job events (project or group webhooks) as the
// event feed where the registry sends none (GitLab.com). A pipeline or job that reaches a final
// status asks for a re-crawl of its project's container repositories (project-crawls.ts); serve
// answers 202 at once, since GitLab disables a webhook that keeps timing out.
// https://docs.gitlab.com/user/project/integrations/webhook_events/#pipeline-events
// https://docs.gitlab.com/user/project/integrations/webhook_events/#job-events
// https://docs.gitlab.com/user/project/integrations/webhooks/#validate-requests-with-a-secret-token
// (the secret token comes back in X-Gitlab-Token; the kind of event in X-Gitlab-Event)
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { NotFoundError, isTagtrailError, httpStatusFor } from '../errors.js';
import type { Metrics } from './metrics.js';
import type { ProjectCrawler } from './project-crawls.js';
import { DEFAULT_MAX_EVENT_BYTES, checkContentType, readBodyText, secretChecker } from './webhook.js';
import { type ApiModule, type RouteSpec, errorResponse, serve } from './api/route.js';
import { GitlabEventResultSchema } from './api/schemas.js';

const GITLAB_EVENTS: RouteSpec = {
  method: 'post',
  path: '/gitlab/events',
  operationId: 'gitlabEvents',
  summary: "GitLab's Pipeline and Job events (project or group webhook), with the secret token in X-Gitlab-Token.",
  description: "A pipeline or job that ends (success, failed, canceled) queues a re-crawl of its project's container repositories. Other events answer 200 and are ignored. Only on with --gitlab-webhook-secret.",
  security: [{ gitlabWebhookToken: [] }],
  requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
  responses: {
    202: { description: 'A crawl of the project is queued.', json: GitlabEventResultSchema },
    200: { description: 'Ignored: another kind of event, a pipeline or job that has not ended, or a project serve does not crawl.', json: GitlabEventResultSchema },
    400: errorResponse('Not a JSON object, or no project named.'),
    401: errorResponse('A missing or wrong X-Gitlab-Token; the body is not read.'),
    404: errorResponse('The GitLab webhook is off (serve runs without --gitlab-webhook-secret).'),
    413: errorResponse('The body is over the size limit.'),
  },
};

export const GITLAB_EVENTS_API: ApiModule = { base: '/api/v1', routes: [GITLAB_EVENTS] };

/** A pipeline or job in one of these has ended (GitLab's statuses: created, pending, running, success, failed, canceled, skipped, manual, ...). */
const FINAL_STATUSES = new Set(['success', 'failed', 'canceled']);
const HOOKS = new Set(['Pipeline Hook', 'Job Hook']);

export interface GitlabEventsOptions {
  secret: string;
  crawler: ProjectCrawler;
  /** The GitLab servers (--gitlab-url): a Job Hook's repository.homepage is read relative to them. */
  gitlabUrls: readonly string[];
  /** Whether serve crawls this project's repositories (discovery names groups and projects); default all. */
  covers?: (projectPath: string) => boolean;
  maxBodyBytes?: number;
  logger?: Logger;
  metrics?: Metrics;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);
const PATH = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)+$/;

/** The project's full path: `project.path_with_namespace`, else (older Job Hooks) the path of `repository.homepage`. */
function projectPathOf(body: Obj, gitlabUrls: readonly string[]): string | undefined {
  const withNamespace = obj(body.project)?.path_with_namespace;
  if (typeof withNamespace === 'string' && PATH.test(withNamespace)) return withNamespace.toLowerCase();
  const homepage = obj(body.repository)?.homepage;
  if (typeof homepage !== 'string') return undefined;
  let url: URL;
  try {
    url = new URL(homepage);
  } catch {
    return undefined;
  }
  // A server installed under a relative URL (https://example.com/gitlab) has it in every homepage.
  let path = url.pathname;
  for (const g of gitlabUrls) {
    try {
      const base = new URL(g);
      const prefix = base.pathname.replace(/\/+$/, '');
      if (base.origin === url.origin && prefix !== '' && path.startsWith(`${prefix}/`)) path = path.slice(prefix.length);
    } catch {
      // not a URL: skip
    }
  }
  const p = path.replace(/^\/+|\/+$/g, '');
  return PATH.test(p) ? p.toLowerCase() : undefined;
}

/** The status of a Pipeline Hook (object_attributes.status) or a Job Hook (build_status). */
function statusOf(event: string, body: Obj): string | undefined {
  const s = event === 'Pipeline Hook' ? obj(body.object_attributes)?.status : body.build_status;
  return typeof s === 'string' ? s : undefined;
}

/** Without options (no --gitlab-webhook-secret) the route answers 404. */
export function gitlabEventsApp(o: GitlabEventsOptions | undefined): Hono {
  const app = new Hono();
  if (!o) {
    serve(app, GITLAB_EVENTS, () => {
      throw new NotFoundError('the GitLab webhook is off', { hint: 'start tagtrail serve with --gitlab-webhook-secret (or TAGTRAIL_GITLAB_WEBHOOK_SECRET)' });
    });
    return app;
  }
  const check = secretChecker(o.secret);
  const maxBytes = o.maxBodyBytes ?? DEFAULT_MAX_EVENT_BYTES;
  serve(app, GITLAB_EVENTS, async (c) => {
    // The token before anything else: a wrong one never gets its body read.
    if (!check(c.req.header('x-gitlab-token'))) {
      o.metrics?.webhookEnvelopes.inc({ result: 'unauthorized' });
      o.logger?.warn({ path: c.req.path }, 'GitLab webhook call with a missing or wrong X-Gitlab-Token');
      return c.json({ error: { code: 'UNAUTHORIZED', message: 'missing or wrong secret token in X-Gitlab-Token' } }, 401);
    }
    const event = c.req.header('x-gitlab-event') ?? '';
    if (!HOOKS.has(event)) return c.json({ ignored: true, event: event.slice(0, 100) }, 200);
    let body: Obj | undefined;
    try {
      checkContentType(c.req.header('content-type'));
      const text = await readBodyText(c.req.raw, maxBytes);
      try {
        body = obj(JSON.parse(text));
      } catch {
        body = undefined;
      }
    } catch (err) {
      o.metrics?.webhookEnvelopes.inc({ result: 'rejected' });
      if (isTagtrailError(err)) return c.json({ error: { code: err.code, message: err.message } }, httpStatusFor(err) as 400);
      throw err;
    }
    if (!body) return c.json({ error: { code: 'USAGE', message: 'the body is not a JSON object' } }, 400);
    const status = statusOf(event, body);
    const project = projectPathOf(body, o.gitlabUrls);
    if (project === undefined) return c.json({ error: { code: 'USAGE', message: 'the event names no project (project.path_with_namespace or repository.homepage)' } }, 400);
    if (status === undefined || !FINAL_STATUSES.has(status)) return c.json({ queued: false, project, status: status ?? null }, 200);
    if (o.covers && !o.covers(project)) {
      o.logger?.info({ project }, 'GitLab event for a project outside the named groups and projects: ignored');
      return c.json({ queued: false, project, status }, 200);
    }
    o.crawler.schedule(project);
    o.metrics?.webhookEnvelopes.inc({ result: 'accepted' });
    o.logger?.info({ event, project, status }, 'GitLab event: project crawl queued');
    return c.json({ queued: true, project, status }, 202);
  });
  return app;
}
