// tagtrail serve: the API, the registry webhook, the periodic reconcile (and the browser UI).
// Logs JSON lines (pino) on standard output; stops gracefully on SIGTERM and SIGINT.
import { serve as listen } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { UsageError } from '../errors.js';
import { DEFAULT_STORE_URL, openStore, redactDatabaseUrl } from '../catalog/open.js';
import { createApp, type WebhookOptions } from '../server/app.js';
import { createLogger } from '../server/logger.js';
import { Metrics } from '../server/metrics.js';
import { Reconciler } from '../server/reconcile.js';
import { mountUi } from '../server/ui/index.js';
import { gitlabUrlsFrom, parseGitlabUrls } from '../server/ui/links.js';
import { MIN_SECRET_LENGTH } from '../server/webhook.js';
import type { Runtime } from '../runtime.js';
import { VERSION } from '../version.js';
import { type RegistryTarget, concurrencySetting, fromEnv, parseRegistryUrl, positiveInt, readConfigsFlag, targetFlags } from './catalog-common.js';
import { type RegistryFlags, registryClient } from './common.js';
import { withTimeout } from '../time.js';
import { accessSettings } from '../server/auth/settings.js';
import { accessSetup } from '../server/auth/setup.js';
import { type GitlabDiscoveryFlags, gitlabDiscoveryFrom } from './gitlab-discovery.js';
import { type ServeGitlabFlags, checkServeGitlabFlags, serveGitlab } from './serve-gitlab.js';

interface ServeFlags extends RegistryFlags, GitlabDiscoveryFlags, ServeGitlabFlags {
  listen?: string;
  registry?: string;
  db?: string;
  webhookSecret?: string;
  reconcileInterval?: string;
  concurrency?: string;
  readConfigs?: boolean;
  gitlabUrl?: string[];
  auth?: string;
  publicUrl?: string;
  metricsToken?: string;
}

const DEFAULT_LISTEN = '127.0.0.1:8080';
/** How long in-flight requests get to finish on shutdown. */
const DRAIN_MS = 10_000;

/** HOST:PORT or [IPv6]:PORT. */
function parseListen(value: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`--listen ${JSON.stringify(value.slice(0, 100))} is not HOST:PORT`, { hint: 'e.g. --listen 127.0.0.1:8080, --listen 0.0.0.0:8080 or --listen [::1]:8080' });
  return { hostname: (m[1] ?? m[2]) as string, port };
}

export async function run(rt: Runtime, _args: unknown[], opts: Record<string, unknown>): Promise<number> {
  const flags = opts as unknown as ServeFlags;
  const address = parseListen(fromEnv(rt, flags.listen, 'TAGTRAIL_LISTEN') ?? DEFAULT_LISTEN);
  const access = accessSettings({
    listenHostname: address.hostname,
    ...optional('auth', fromEnv(rt, flags.auth, 'TAGTRAIL_AUTH')),
    ...optional('publicUrl', fromEnv(rt, flags.publicUrl, 'TAGTRAIL_PUBLIC_URL')),
    ...optional('metricsToken', flags.metricsToken ?? rt.env.TAGTRAIL_METRICS_TOKEN),
  });
  const registryValue = fromEnv(rt, flags.registry, 'TAGTRAIL_REGISTRY');
  const gitlab = gitlabDiscoveryFrom(rt, flags);
  let target: RegistryTarget | undefined = registryValue === undefined ? undefined : parseRegistryUrl(registryValue);
  if (gitlab && target === undefined) {
    // Without --registry, the registry is where GitLab locates the repositories.
    const host = await gitlab.discoverRegistry();
    if (host === undefined) throw new UsageError('the GitLab groups and projects named hold no container repository, so the registry is unknown', { hint: 'pass --registry URL as well' });
    target = { host, insecure: false, https: false };
  }
  const dbUrl = fromEnv(rt, flags.db, 'TAGTRAIL_DB') ?? DEFAULT_STORE_URL;
  const interval = positiveInt(fromEnv(rt, flags.reconcileInterval, 'TAGTRAIL_RECONCILE_INTERVAL'), '--reconcile-interval', 600, 0, 7 * 24 * 3600);
  const concurrency = concurrencySetting(rt, flags.concurrency);
  const readConfigs = readConfigsFlag(rt, flags.readConfigs);
  const gitlabUrls = gitlabUrlsFrom(flags.gitlabUrl, rt.env.TAGTRAIL_GITLAB_URL);
  // Only GitLab servers named on purpose are trusted token realms; the links default (gitlab.com) is not.
  const configuredGitlabUrls = (flags.gitlabUrl?.length ?? 0) > 0 || (rt.env.TAGTRAIL_GITLAB_URL ?? '').trim() !== '' ? parseGitlabUrls(gitlabUrls).map((g) => g.origin) : [];

  // The webhook never runs unauthenticated: no secret, no webhook. An empty or short secret is refused.
  const secretFlag = flags.webhookSecret;
  const secret = secretFlag !== undefined ? secretFlag : rt.env.TAGTRAIL_WEBHOOK_SECRET;
  if (secret !== undefined && secret.length < MIN_SECRET_LENGTH) {
    throw new UsageError(`the webhook secret must be at least ${MIN_SECRET_LENGTH} characters${secret === '' ? ' (it is empty)' : ''}`, {
      hint: 'make one with: openssl rand -hex 32; leave --webhook-secret and TAGTRAIL_WEBHOOK_SECRET unset to run without the webhook',
    });
  }
  if (secret !== undefined && target === undefined) {
    throw new UsageError('the webhook needs --registry (or TAGTRAIL_REGISTRY): manifests are read from there, never from URLs in events');
  }

  const gitlabChecked = checkServeGitlabFlags(rt, flags, target !== undefined, access.publicUrl);
  const logger = createLogger(rt.stdout, rt.env.TAGTRAIL_LOG_LEVEL || 'info');

  const client = target
    ? await registryClient(rt, targetFlags(flags, target), [target.host], configuredGitlabUrls, gitlab?.credentials(target.host))
    : undefined;
  const store = await openStore(dbUrl);
  const metrics = new Metrics();
  let accepting = true;
  const webhook: WebhookOptions | undefined = secret !== undefined && client && target ? { secret, client, registry: target.host, concurrency, readConfigs } : undefined;
  const ui = (a: Parameters<typeof mountUi>[0]): void =>
    mountUi(a, {
      store,
      gitlabUrls,
      ...(target ? { registryHost: target.host } : {}),
      now: rt.now,
      onError: (err) => logger.error({ err: { message: err instanceof Error ? err.message : String(err) } }, 'page failed'),
    });
  let setup: ReturnType<typeof accessSetup>;
  try {
    setup = accessSetup(access, { env: rt.env, fetch: rt.fetch, now: rt.now, sessions: store, gitlabUrl: gitlabUrls.flatMap((u) => u.split(',')).map((u) => u.trim()).find((u) => u !== '') as string, discovery: gitlab !== undefined, logger });
  } catch (err) {
    await store.close();
    throw err;
  }
  const { guards, routes } = setup;
  const gitlabServe = serveGitlab(rt, gitlabChecked, { client, registry: target?.host, store, gitlabUrls, configuredGitlabUrls, discovery: gitlab, concurrency, readConfigs, logger, metrics });
  if (access.publicUrl && !gitlabServe.builds) logger.warn('build reports (POST /api/v1/builds) are off: they need --registry (or TAGTRAIL_REGISTRY) to read the reported manifests');
  const app = createApp({
    store,
    logger,
    metrics,
    accepting: () => accepting,
    ui,
    now: rt.now,
    gitlabServers: parseGitlabUrls(gitlabUrls),
    guards,
    ...(routes ? { routes } : {}),
    ...(webhook ? { webhook } : {}),
    ...(gitlabServe.gitlabEvents ? { gitlabEvents: gitlabServe.gitlabEvents } : {}),
    ...(gitlabServe.builds ? { builds: gitlabServe.builds } : {}),
  });

  // Before taking traffic: reach the registry once (auth challenge, connection) and run a first
  // query, so the first notification is not slowed by either, and a wrong registry shows at once.
  if (client && target) {
    try {
      await withTimeout(client.transport.request({ registry: target.host, method: 'GET', path: '/v2/' }), 10_000);
    } catch (err) {
      logger.warn({ registry: target.host, err: { message: err instanceof Error ? err.message : String(err) } }, 'the registry did not answer; notifications and the reconcile will keep trying');
    }
  }
  await store.searchImages({ limit: 1 });

  let server!: ReturnType<typeof listen>;
  try {
    const bound = await new Promise<AddressInfo>((resolve, reject) => {
      server = listen({ fetch: app.fetch, hostname: address.hostname, port: address.port }, resolve);
      server.once('error', reject);
    });
    const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
    logger.info(
      {
        version: VERSION,
        url: `http://${host}:${bound.port}`,
        registry: target?.host ?? null,
        db: redactDatabaseUrl(dbUrl),
        dialect: store.dialect,
        webhook: webhook ? 'on' : 'off',
        auth: access.mode,
        publicUrl: access.publicUrl?.origin ?? null,
        gitlabEvents: gitlabServe.gitlabEvents ? 'on' : 'off',
        buildReports: gitlabServe.builds ? 'on' : 'off',
        reconcileIntervalSeconds: target ? interval : 0,
      },
      'listening',
    );
  } catch (err) {
    await store.close();
    throw new UsageError(`cannot listen on ${address.hostname}:${address.port}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!webhook) logger.warn(target ? 'the webhook is off: set --webhook-secret or TAGTRAIL_WEBHOOK_SECRET to take registry notifications' : 'no --registry: serving the catalog read-only, no webhook, no reconcile');

  const reconciler = client && target ? new Reconciler({ store, client, registry: target.host, intervalSeconds: interval, concurrency, readConfigs, logger, metrics, ...(gitlab ? { source: gitlab.source(target.host) } : {}) }) : undefined;
  reconciler?.start();

  const signal = await new Promise<string>((resolve) => {
    const stop = (name: string) => () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      resolve(name);
    };
    const onTerm = stop('SIGTERM');
    const onInt = stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });

  // Stop accepting, let requests in flight finish (closing idle keep-alive connections), stop
  // the reconcile after its requests in flight, then close the store.
  logger.info({ signal }, 'shutting down');
  accepting = false;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  if ('closeIdleConnections' in server) server.closeIdleConnections();
  const drained = await Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), DRAIN_MS).unref())]);
  if (!drained && 'closeAllConnections' in server) {
    logger.warn('requests still running after the drain period: closing their connections');
    server.closeAllConnections();
  }
  await reconciler?.stop();
  await gitlabServe.stop();
  await store.close();
  logger.info('stopped');
  return 0;
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
