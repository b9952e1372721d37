// serve's GitLab options: --gitlab-webhook-secret (Pipeline and Job events as the event feed) and
// --public-url (build reports verified against GitLab ID tokens). Kept apart from serve.ts.
import type { Logger } from 'pino';
import { UsageError } from '../errors.js';
import type { Store } from '../catalog/store.js';
import { checkGitlabUrl } from '../gitlab/api.js';
import { IdTokenVerifier } from '../gitlab/id-token.js';
import type { RegistryClient } from '../oci/registry.js';
import type { BuildReportOptions } from '../server/builds.js';
import type { GitlabEventsOptions } from '../server/gitlab-events.js';
import type { Metrics } from '../server/metrics.js';
import { ProjectCrawler, projectCrawl } from '../server/project-crawls.js';
import { DEFAULT_MAX_EVENT_BYTES, MIN_SECRET_LENGTH } from '../server/webhook.js';
import type { Runtime } from '../runtime.js';
import type { GitlabDiscovery } from './gitlab-discovery.js';

export interface ServeGitlabFlags {
  gitlabWebhookSecret?: string;
}

interface ServeGitlabContext {
  client: RegistryClient | undefined;
  registry: string | undefined;
  store: Store;
  gitlabUrls: readonly string[];
  /** The GitLab servers named on purpose (--gitlab-url, TAGTRAIL_GITLAB_URL): the only ID-token issuers. */
  configuredGitlabUrls: readonly string[];
  discovery: GitlabDiscovery | undefined;
  concurrency: number;
  readConfigs: boolean;
  logger: Logger;
  metrics: Metrics;
}

/** Checks the flags before anything starts: a short secret or a bad URL stops serve at once. */
export function checkServeGitlabFlags(rt: Runtime, flags: ServeGitlabFlags, hasRegistry: boolean, publicOrigin: URL | undefined): { secret?: string; publicUrl?: string } {
  const secret = flags.gitlabWebhookSecret ?? rt.env.TAGTRAIL_GITLAB_WEBHOOK_SECRET;
  if (secret !== undefined && secret.length < MIN_SECRET_LENGTH) {
    throw new UsageError(`the GitLab webhook secret must be at least ${MIN_SECRET_LENGTH} characters${secret === '' ? ' (it is empty)' : ''}`, {
      hint: 'make one with: openssl rand -hex 32, and give the same one as the webhook\'s secret token in GitLab',
    });
  }
  // --public-url is parsed once, with the access settings (server/auth/settings.ts): an origin.
  // The audience is compared as a string, so it is that origin as URL.origin writes it (no
  // trailing slash), the form a CI job's id_tokens aud is written in.
  const publicUrl = publicOrigin?.origin;
  // The public URL also serves sign-in and the Host check, so a read-only serve may have it:
  // build reports are then off (serve.ts says so), as they read manifests from the registry.
  if (secret !== undefined && !hasRegistry) {
    throw new UsageError('GitLab events need --registry (or TAGTRAIL_REGISTRY): manifests are read from there');
  }
  return { ...(secret !== undefined ? { secret } : {}), ...(publicUrl !== undefined ? { publicUrl } : {}) };
}

interface ServeGitlab {
  gitlabEvents?: GitlabEventsOptions;
  builds?: BuildReportOptions;
  stop(): Promise<void>;
}

export function serveGitlab(rt: Runtime, checked: { secret?: string; publicUrl?: string }, ctx: ServeGitlabContext): ServeGitlab {
  const { client, registry } = ctx;
  if (!client || registry === undefined) return { stop: async () => undefined };
  let crawler: ProjectCrawler | undefined;
  const out: ServeGitlab = { stop: async () => crawler?.stop() };
  if (checked.secret !== undefined) {
    crawler = new ProjectCrawler({
      crawl: projectCrawl({ client, store: ctx.store, registry, concurrency: ctx.concurrency, readConfigs: ctx.readConfigs, logger: ctx.logger, metrics: ctx.metrics, ...(ctx.discovery ? { api: ctx.discovery.api } : {}) }),
      logger: ctx.logger,
    });
    const source = ctx.discovery?.source(registry);
    out.gitlabEvents = {
      secret: checked.secret,
      crawler,
      gitlabUrls: ctx.gitlabUrls,
      ...(source ? { covers: (project: string) => source.covers(project) } : {}),
      logger: ctx.logger,
      metrics: ctx.metrics,
    };
  }
  // The links' default (gitlab.com) is no trusted issuer: a token is trusted only from a GitLab
  // someone named, or anyone owning the same namespace on gitlab.com could verify builds here.
  if (checked.publicUrl !== undefined && ctx.configuredGitlabUrls.length === 0) {
    ctx.logger.warn('build reports are off: name the GitLab server whose ID tokens to trust with --gitlab-url');
  } else if (checked.publicUrl !== undefined) {
    const issuers = [...ctx.configuredGitlabUrls];
    for (const i of issuers) checkGitlabUrl(i);
    out.builds = {
      verifier: new IdTokenVerifier({ issuers, audience: checked.publicUrl, fetch: rt.fetch, now: rt.now }),
      client,
      registry,
      now: rt.now,
      maxBodyBytes: DEFAULT_MAX_EVENT_BYTES,
      logger: ctx.logger,
    };
  }
  return out;
}
