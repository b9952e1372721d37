// tagtrail sync --registry URL [--repository PREFIX]: crawl a registry into the catalog.
import { ConflictError, EXIT_FAILURE, EXIT_OK, UsageError } from '../errors.js';
import { DEFAULT_STORE_URL, openStore } from '../catalog/open.js';
import { CRAWL_LOCK, type SyncProgress, type SyncSummary, sync } from '../catalog/sync.js';
import { isValidRepository } from '../oci/reference.js';
import { inertText, writeControl } from '../inert-text.js';
import type { Runtime } from '../runtime.js';
import { type RegistryTarget, concurrencySetting, fromEnv, readConfigsFlag, requireRegistry, targetFlags } from './catalog-common.js';
import { type RegistryFlags, registryClient } from './common.js';
import { type GitlabDiscoveryFlags, gitlabDiscoveryFrom } from './gitlab-discovery.js';

/**
 * SQLite's page cache for a crawl, MiB: a crawl writes pages and reads few back, so a small cache
 * costs it little, and the process then stays the same size however large the catalog grows
 * (serve keeps the default 64 MiB, which search wants).
 */
const SYNC_SQLITE_CACHE_MIB = 8;

interface SyncFlags extends RegistryFlags, GitlabDiscoveryFlags {
  registry?: string;
  repository?: string;
  db?: string;
  concurrency?: string;
  restart?: boolean;
  readConfigs?: boolean;
  output: 'text' | 'json';
}

function bar(p: SyncProgress, width = 24): string {
  const total = Math.max(p.repositoriesTotal, 1);
  const filled = Math.round((Math.min(p.repositoriesDone, total) / total) * width);
  const head = p.phase === 'catalog' ? 'listing the repositories…' : `[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${p.repositoriesDone}/${p.repositoriesTotal} repositories`;
  return `${head}, ${p.tagsDone}/${p.tagsSeen} tags, ${p.manifestsFetched} manifests read`;
}

function summaryText(s: SyncSummary): string {
  const lines: string[] = [];
  const scope = s.prefix ? ` (repositories under ${s.prefix})` : '';
  const state = s.complete ? 'synced' : 'interrupted syncing';
  lines.push(`${state} ${s.registry}${scope}${s.resumedAfter ? `, resumed after ${s.resumedAfter}` : ''}`);
  if (s.listedBy === 'gitlab') lines.push("  repositories listed through GitLab's API");
  if (s.singleRepository) lines.push(`  the registry's catalog is not readable with these credentials; synced ${s.prefix} alone`);
  lines.push(`  repositories: ${s.repositories}   tags checked: ${s.tags}`);
  lines.push(`  manifests read: ${s.manifestsFetched}   config blobs read: ${s.configsFetched}   new in the catalog: ${s.manifestsStored}`);
  lines.push(`  tags: ${s.added} added, ${s.updated} moved, ${s.deleted} deleted, ${s.unchanged} unchanged${s.skipped ? `, ${s.skipped} left to newer events` : ''}`);
  if (s.errorCount > 0) {
    lines.push(`  errors: ${s.errorCount}`);
    for (const e of s.errors.slice(0, 20)) lines.push(`    ${inertText(e.repository)}${e.tag ? `:${inertText(e.tag)}` : ''}: ${inertText(e.message)}`);
    if (s.errorCount > 20) lines.push(`    … and ${s.errorCount - 20} more`);
  }
  lines.push(`  took ${(s.durationMs / 1000).toFixed(1)} s`);
  if (!s.complete) lines.push('run the same command again to resume where it stopped');
  return `${lines.join('\n')}\n`;
}

async function registryOfGitlab(gitlab: NonNullable<ReturnType<typeof gitlabDiscoveryFrom>>): Promise<RegistryTarget> {
  const host = await gitlab.discoverRegistry();
  if (host === undefined) {
    throw new UsageError('the GitLab groups and projects named hold no container repository, so the registry is unknown', { hint: 'pass --registry URL as well' });
  }
  return { host, insecure: false, https: false };
}

export async function run(rt: Runtime, _args: unknown[], opts: Record<string, unknown>): Promise<number> {
  const flags = opts as unknown as SyncFlags;
  const gitlab = gitlabDiscoveryFrom(rt, flags);
  // With GitLab discovery the registry may come from the listing's `location` instead.
  const target = gitlab && fromEnv(rt, flags.registry, 'TAGTRAIL_REGISTRY') === undefined ? await registryOfGitlab(gitlab) : requireRegistry(rt, flags.registry);
  const repository = fromEnv(rt, flags.repository, 'TAGTRAIL_REPOSITORY');
  if (repository !== undefined && !isValidRepository(repository.replace(/\/+$/, ''))) {
    throw new UsageError(`--repository ${JSON.stringify(repository.slice(0, 100))} is not a repository path`, { hint: 'e.g. --repository group or --repository group/project/app' });
  }
  const prefix = repository?.replace(/\/+$/, '');
  const concurrency = concurrencySetting(rt, flags.concurrency);
  const readConfigs = readConfigsFlag(rt, flags.readConfigs);
  const dbUrl = fromEnv(rt, flags.db, 'TAGTRAIL_DB') ?? DEFAULT_STORE_URL;
  // node:http (rt.http): its HEADs keep their connection, where undici's fetch opens one per HEAD.
  const client = await registryClient(rt, targetFlags(flags, target), [target.host], gitlab ? [gitlab.api.origin] : [], gitlab?.credentials(target.host));
  const store = await openStore(dbUrl, { sqliteCacheMiB: SYNC_SQLITE_CACHE_MIB });

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    rt.stderr.write('\nstopping after the requests in flight (the checkpoint is kept; press Ctrl-C again to quit now)\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const tty = rt.stderr.isTTY === true && flags.output !== 'json';
  let lastDraw = 0;
  const draw = (p: SyncProgress): void => {
    if (!tty) return;
    const now = Date.now();
    if (now - lastDraw < 100 && p.phase !== 'done') return;
    lastDraw = now;
    writeControl(rt.stderr, '\r\u001b[2K');
    rt.stderr.write(bar(p));
  };

  try {
    const locked = await store.withLock(CRAWL_LOCK, () =>
      sync({
        client,
        store,
        registry: target.host,
        ...(prefix ? { prefix } : {}),
        ...(gitlab ? { source: gitlab.source(target.host) } : {}),
        concurrency,
        readConfigs,
        resume: !flags.restart,
        signal: controller.signal,
        onProgress: draw,
        onWarning: (message) => {
          if (tty) writeControl(rt.stderr, '\r\u001b[2K');
          rt.stderr.write(`warning: ${inertText(message)}\n`);
        },
        now: rt.now,
      }),
    );
    if (tty) writeControl(rt.stderr, '\r\u001b[2K');
    if (!locked.ran) {
      throw new ConflictError('another tagtrail sync, or the reconcile of a tagtrail serve, is crawling into this catalog right now', {
        hint: 'wait for it to finish, then run sync again',
      });
    }
    const summary = locked.value;
    rt.stdout.write(flags.output === 'json' ? `${JSON.stringify(summary, null, 2)}\n` : summaryText(summary));
    return summary.complete && summary.errorCount === 0 ? EXIT_OK : EXIT_FAILURE;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await store.close();
  }
}
