// From the access settings to what the hono app runs: the Host check, the /metrics rule and,
// with --auth gitlab, sign-in. serve.ts calls this once.
import type { Hono, MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { UsageError } from '../../errors.js';
import { checkGitlabUrl } from '../../gitlab/api.js';
import type { Sessions } from '../../catalog/store.js';
import { gitlabSignIn } from './gitlab-sign-in.js';
import { hostCheck } from './host-check.js';
import { metricsGuard } from './metrics-guard.js';
import { DEFAULT_ACCESS_TTL_SECONDS, People } from './people.js';
import { MIN_SESSION_SECRET_LENGTH, deriveKeys } from './seal.js';
import type { AccessSettings } from './settings.js';

interface AccessSetupOptions {
  env: Readonly<Record<string, string | undefined>>;
  fetch: typeof fetch;
  now: () => Date;
  sessions: Sessions;
  /** The first --gitlab-url. */
  gitlabUrl: string;
  /** GitLab discovery is on: it records each repository's project and its visibility. */
  discovery: boolean;
  logger?: Logger;
}

function required(env: AccessSetupOptions['env'], name: string, why: string): string {
  const v = env[name];
  if (v === undefined || v.trim() === '') throw new UsageError(`--auth gitlab needs ${name}: ${why}`, { hint: 'see docs/access.md for setting up the GitLab OAuth application' });
  return v.trim();
}

/** How long a person's projects are remembered: at most 5 minutes (TAGTRAIL_ACCESS_CACHE_SECONDS lowers it). */
function cacheSeconds(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_ACCESS_TTL_SECONDS;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > DEFAULT_ACCESS_TTL_SECONDS) throw new UsageError(`TAGTRAIL_ACCESS_CACHE_SECONDS must be a whole number from 1 to ${DEFAULT_ACCESS_TTL_SECONDS}`);
  return n;
}

export function accessSetup(settings: AccessSettings, options: AccessSetupOptions): { guards: MiddlewareHandler[]; routes?: (app: Hono) => void } {
  const guards = [hostCheck(settings.publicUrl), metricsGuard({ loopbackListen: settings.loopbackListen, ...(settings.metricsToken !== undefined ? { token: settings.metricsToken } : {}) })];
  if (settings.mode === 'none') return { guards };
  const { env } = options;
  if (!settings.publicUrl) throw new UsageError('--auth gitlab needs --public-url (or TAGTRAIL_PUBLIC_URL): GitLab sends people back to <public URL>/auth/callback');
  const gitlabUrl = checkGitlabUrl(options.gitlabUrl);
  const clientId = required(env, 'TAGTRAIL_OAUTH_CLIENT_ID', "the GitLab OAuth application's id");
  const clientSecret = required(env, 'TAGTRAIL_OAUTH_CLIENT_SECRET', "the GitLab OAuth application's secret");
  const sessionSecret = required(env, 'TAGTRAIL_SESSION_SECRET', `at least ${MIN_SESSION_SECRET_LENGTH} characters that sign session cookies and encrypt GitLab tokens, the same on every replica`);
  if (sessionSecret.length < MIN_SESSION_SECRET_LENGTH) throw new UsageError(`TAGTRAIL_SESSION_SECRET must be at least ${MIN_SESSION_SECRET_LENGTH} characters`, { hint: 'make one with: openssl rand -hex 32' });
  const people = new People({
    gitlabUrl,
    fetch: options.fetch,
    ttlMs: cacheSeconds(env.TAGTRAIL_ACCESS_CACHE_SECONDS) * 1000,
    now: () => options.now().getTime(),
    publicAndInternal: options.discovery,
  });
  const signIn = gitlabSignIn({
    gitlabUrl,
    clientId,
    clientSecret,
    publicUrl: settings.publicUrl,
    keys: deriveKeys(sessionSecret),
    sessions: options.sessions,
    people,
    fetch: options.fetch,
    now: options.now,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  return { guards: [...guards, signIn.guard], routes: signIn.routes };
}
