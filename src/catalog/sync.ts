// The crawler: the list of repositories (/v2/_catalog, paginated, or GitLab's API: discovery.ts),
// each repository's tags, a HEAD per tag, and a manifest
// GET only for a digest the catalog does not hold yet. Both `tagtrail sync` and the periodic
// reconcile of `tagtrail serve` run it.
//
// - Bounded: at most `concurrency` registry requests in flight, with twice as many tags under
//   way, so a tag waiting for the catalog leaves its request slot to another.
// - Batched: the catalog look-ups and manifest writes of concurrent tags are gathered into one
//   query or transaction each (crawl-store.ts): the catalog keeps pace with the registry.
// - Resumable: after each repository (in catalog order) a checkpoint records the last one done;
//   an interrupted run leaves it behind and the next run starts after it. A run that completes
//   deletes it.
// - Careful with deletions: a repository's tags are reconciled (tags missing from the registry
//   become deleted) only when every tag of it was read. A repository whose tags could not all be
//   read only gets the tags it did read.
import { AuthError, NotFoundError, isTagtrailError } from '../errors.js';
import { isValidRepository, isValidTag } from '../oci/reference.js';
import { isReferrersTag } from '../oci/referrers.js';
import type { RegistryClient } from '../oci/registry.js';
import { type GitlabProjectInfo, type RepositorySource, catalogSource } from './discovery.js';
import { crawlStore } from './crawl-store.js';
import { Ingestor } from './ingest.js';
import { retireReferrersTags, subjectOfReferrersTag } from './follow-referrers.js';
import { type Limiter, createLimiter } from './limit.js';
import type { Store } from './store.js';
import type { ReconcileResult } from './types.js';

/** The store lock every crawler (sync and reconcile, in any process) takes. */
export const CRAWL_LOCK = 'tagtrail:crawl';

export interface SyncProgress {
  phase: 'catalog' | 'tags' | 'cleanup' | 'done';
  repositoriesTotal: number;
  repositoriesDone: number;
  tagsSeen: number;
  tagsDone: number;
  manifestsFetched: number;
}

interface SyncFailure {
  repository: string;
  tag?: string;
  code: string;
  message: string;
}

export interface SyncSummary {
  registry: string;
  prefix: string | null;
  /** The checkpoint this run started after, or null for a run from the start. */
  resumedAfter: string | null;
  /** False when the run was interrupted; its checkpoint is kept for the next run. */
  complete: boolean;
  /** Where the list of repositories came from. */
  listedBy: 'catalog' | 'gitlab';
  /** True when the registry's catalog was unavailable and the prefix was crawled as one repository. */
  singleRepository: boolean;
  repositories: number;
  tags: number;
  manifestsFetched: number;
  configsFetched: number;
  manifestsStored: number;
  added: number;
  updated: number;
  deleted: number;
  unchanged: number;
  /** Tags changed by newer events while the crawl ran: left as the events set them. */
  skipped: number;
  errorCount: number;
  /** The first errors, for the summary. */
  errors: SyncFailure[];
  durationMs: number;
}

interface SyncOptions {
  client: RegistryClient;
  store: Store;
  /** host[:port] */
  registry: string;
  /** Only repositories equal to this path or under it (whole path components). */
  prefix?: string;
  /** Registry requests in flight at most. Default 8. */
  concurrency?: number;
  /** Catalog page size. Default 100. */
  pageSize?: number;
  /** Where the list of repositories comes from. Default: the registry's /v2/_catalog. */
  source?: RepositorySource;
  /** Start after the checkpoint of an interrupted run (default true); false starts over. */
  resume?: boolean;
  /** Abort to stop: requests in flight finish, the checkpoint is kept. */
  signal?: AbortSignal;
  onProgress?: (progress: SyncProgress) => void;
  /** Called after each manifest or config read from the registry. */
  onRead?: (what: 'manifest' | 'config') => void;
  /** Read every new image config once for builder evidence (see Ingestor). */
  readConfigs?: boolean;
  /** A build-details referrer or referrers tag left out, and why (see follow-referrers.ts). */
  onWarning?: (message: string) => void;
  now?: () => Date;
}

interface Checkpoint {
  last: string;
  startedAt: number;
}

const MAX_REPORTED_ERRORS = 50;

export function checkpointKey(registry: string, prefix: string | undefined, sourceId?: string): string {
  return `sync:${registry}:${prefix ?? ''}${sourceId !== undefined ? `:${sourceId}` : ''}`;
}

function inPrefix(repository: string, prefix: string | undefined): boolean {
  if (prefix === undefined || prefix === '') return true;
  return repository === prefix || repository.startsWith(`${prefix}/`);
}

function describe(err: unknown): { code: string; message: string } {
  if (isTagtrailError(err)) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** Runs fn over items with at most n running at once; stops starting new ones once stop() is true. */
async function pool<T>(items: readonly T[], n: number, stop: () => boolean, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !stop()) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

export async function sync(options: SyncOptions): Promise<SyncSummary> {
  const { client, store, registry, signal } = options;
  const prefix = options.prefix === '' ? undefined : options.prefix;
  const now = options.now ?? (() => new Date());
  const started = Date.now();
  const concurrency = options.concurrency ?? 8;
  const limit: Limiter = createLimiter(concurrency);
  const ingestor = new Ingestor({
    client,
    // Look-ups and writes of concurrent tags gathered into batches, so the catalog keeps pace.
    store: crawlStore(store),
    registry,
    limit,
    readConfigs: options.readConfigs === true,
    ...(options.onRead ? { onRead: options.onRead } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
  });
  const source = options.source ?? catalogSource(client, registry, options.pageSize ?? 100);
  const key = checkpointKey(registry, prefix, source.id);
  const gitlabProjects = new Map<string, GitlabProjectInfo>();
  const aborted = (): boolean => signal?.aborted === true;

  const summary: SyncSummary = {
    registry,
    prefix: prefix ?? null,
    resumedAfter: null,
    complete: false,
    singleRepository: false,
    listedBy: source.kind,
    repositories: 0,
    tags: 0,
    manifestsFetched: 0,
    configsFetched: 0,
    manifestsStored: 0,
    added: 0,
    updated: 0,
    deleted: 0,
    unchanged: 0,
    skipped: 0,
    errorCount: 0,
    errors: [],
    durationMs: 0,
  };
  const progress: SyncProgress = { phase: 'catalog', repositoriesTotal: 0, repositoriesDone: 0, tagsSeen: 0, tagsDone: 0, manifestsFetched: 0 };
  const report = (): void => {
    progress.manifestsFetched = ingestor.stats.manifestsFetched;
    options.onProgress?.({ ...progress });
  };
  const fail = (e: SyncFailure): void => {
    summary.errorCount++;
    if (summary.errors.length < MAX_REPORTED_ERRORS) summary.errors.push(e);
  };
  const count = (r: ReconcileResult): void => {
    summary.added += r.added;
    summary.updated += r.updated;
    summary.deleted += r.deleted;
    summary.unchanged += r.unchanged;
    summary.skipped += r.skipped;
  };
  const finish = (): SyncSummary => {
    summary.manifestsFetched = ingestor.stats.manifestsFetched;
    summary.configsFetched = ingestor.stats.configsFetched;
    summary.manifestsStored = ingestor.stats.manifestsStored;
    summary.durationMs = Date.now() - started;
    return summary;
  };

  if (options.resume === false) await store.deleteCheckpoint(key);
  const checkpoint = options.resume === false ? undefined : await store.getCheckpoint<Checkpoint>(key);
  const resumeAfter = checkpoint && typeof checkpoint.last === 'string' && isValidRepository(checkpoint.last) ? checkpoint.last : undefined;
  summary.resumedAfter = resumeAfter ?? null;
  const startedAt = checkpoint?.startedAt ?? started;

  // 1. The catalog (or GitLab's listing), all pages, so progress has a total.
  report();
  const repositories: string[] = [];
  try {
    for await (const { name, gitlab } of source.list(resumeAfter)) {
      if (aborted()) return finish();
      if (gitlab) gitlabProjects.set(name, gitlab);
      if (!isValidRepository(name)) {
        fail({ repository: name.slice(0, 255), code: 'INVALID_REFERENCE', message: 'the catalog lists a repository name that is not valid' });
        continue;
      }
      if (resumeAfter !== undefined && name <= resumeAfter) continue;
      if (inPrefix(name, prefix)) repositories.push(name);
    }
  } catch (err) {
    // No catalog access (GitLab.com, or a token without registry:catalog:*): with a repository
    // named, crawl that one.
    const noCatalog = source.kind === 'catalog' && (err instanceof AuthError || err instanceof NotFoundError);
    if (!noCatalog || prefix === undefined || !isValidRepository(prefix) || resumeAfter !== undefined) throw err;
    summary.singleRepository = true;
    repositories.length = 0;
    repositories.push(prefix);
  }
  for (const s of source.skipped()) fail({ repository: s.name, code: s.code, message: s.message });
  progress.repositoriesTotal = repositories.length;
  progress.phase = 'tags';
  report();

  // 2. The repositories, a few at a time; each one's tags through the shared request limit.
  const done = new Array<boolean>(repositories.length).fill(false);
  let frontier = 0;
  let checkpointWrite: Promise<void> = Promise.resolve();
  const advance = (): void => {
    const before = frontier;
    while (frontier < done.length && done[frontier]) frontier++;
    if (frontier === before) return;
    const last = repositories[frontier - 1] as string;
    // Checkpoints are written one after another, in order.
    checkpointWrite = checkpointWrite.then(() => store.setCheckpoint(key, { last, startedAt } satisfies Checkpoint)).catch(() => undefined);
  };

  const repoConcurrency = Math.max(1, Math.min(4, Math.ceil(concurrency / 2)));
  await pool(repositories, repoConcurrency, aborted, async (repository, index) => {
    const finished = await syncRepository(repository);
    if (!finished) return;
    summary.repositories++;
    progress.repositoriesDone++;
    done[index] = true;
    advance();
    report();
  });
  await checkpointWrite;
  if (aborted()) return finish();

  // 3. Repositories the catalog no longer lists: their tags are gone.
  if (!summary.singleRepository) {
    progress.phase = 'cleanup';
    report();
    const listed = new Set(repositories);
    let cursor: string | undefined;
    do {
      const page = await store.listRepositories({ limit: 500, ...(cursor ? { cursor } : {}) });
      for (const r of page.items) {
        if (listed.has(r.name) || r.tagCount === 0 || !inPrefix(r.name, prefix) || !source.covers(r.name)) continue;
        if (resumeAfter !== undefined && r.name <= resumeAfter) continue;
        count(await store.reconcileRepository(r.name, new Map(), now()));
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined && !aborted());
    if (aborted()) return finish();
  }

  await store.deleteCheckpoint(key);
  summary.complete = true;
  progress.phase = 'done';
  report();
  return finish();

  /** The repository's referrers tags, after a complete listing: a HEAD each, reads only for new digests. */
  async function followReferrers(repository: string, referrersTags: readonly string[]): Promise<boolean> {
    const listed = new Set<string>();
    let complete = true;
    await pool(referrersTags, concurrency, aborted, async (tag) => {
      const subject = subjectOfReferrersTag(tag);
      if (subject === undefined) return;
      listed.add(subject);
      try {
        const head = await limit(() => client.headManifest({ registry, repository, tag }));
        if (!head) return;
        await ingestor.followReferrersTag(repository, tag, head.digest);
      } catch (err) {
        complete = false;
        fail({ repository, tag, ...describe(err) });
      }
    });
    if (aborted()) return false;
    try {
      if (complete) await retireReferrersTags(store, repository, listed);
    } catch (err) {
      fail({ repository, ...describe(err) });
    }
    return true;
  }

  /** Returns false when interrupted before the repository was fully handled. */
  async function syncRepository(repository: string): Promise<boolean> {
    const at = now();
    const tags: string[] = [];
    const referrersTags: string[] = [];
    try {
      for await (const tag of client.listTags(registry, repository)) {
        // The referrers tag's sha256-<hex> lists referrers (tagtrail attach writes one): not
        // an image tag; its build-details referrers are followed below (follow-referrers.ts).
        if (isReferrersTag(tag)) {
          referrersTags.push(tag);
          continue;
        }
        if (isValidTag(tag)) tags.push(tag);
        else fail({ repository, tag: tag.slice(0, 128), code: 'INVALID_REFERENCE', message: 'the registry lists a tag name that is not valid' });
      }
    } catch (err) {
      if (!(err instanceof NotFoundError)) {
        fail({ repository, ...describe(err) });
        return true;
      }
      // A repository without tags (all deleted) answers 404 NAME_UNKNOWN: none are live.
      tags.length = 0;
      referrersTags.length = 0;
    }
    if (aborted()) return false;
    progress.tagsSeen += tags.length;
    report();

    const live = new Map<string, string>();
    let complete = true;
    // Twice as many tags under way as requests in flight: a tag waiting for the catalog holds no
    // request slot, and another one's request takes it meanwhile.
    await pool(tags, 2 * concurrency, aborted, async (tag) => {
      let digest: string;
      try {
        const head = await limit(() => client.headManifest({ registry, repository, tag }));
        summary.tags++;
        progress.tagsDone++;
        if (!head) return; // deleted between the listing and the HEAD
        digest = head.digest;
      } catch (err) {
        complete = false;
        fail({ repository, tag, ...describe(err) });
        return;
      }
      live.set(tag, digest);
      try {
        await ingestor.ingest(repository, digest);
      } catch (err) {
        fail({ repository, tag, ...describe(err) });
        if (err instanceof NotFoundError) {
          // No manifest under the digest the HEAD named (deleted since, or a proxy named a wrong
          // one): record nothing for this tag, and leave the repository unreconciled.
          live.delete(tag);
          complete = false;
        }
        // Otherwise the tag is live whatever its manifest holds; the catalog shows it without details.
      }
    });
    if (aborted()) return false;
    if (complete) {
      count(await store.reconcileRepository(repository, live, at));
    } else {
      for (const [tag, digest] of live) {
        const outcome = await store.setTag(repository, tag, digest, at);
        if (outcome === 'applied') summary.updated++;
      }
    }
    const project = gitlabProjects.get(repository);
    if (project) {
      try {
        await store.setGitlabProject(repository, project);
      } catch (err) {
        fail({ repository, ...describe(err) });
      }
    }
    // After the tags: a referrer counts only where its repository tags the subject (sql/referrers.ts).
    if (!(await followReferrers(repository, referrersTags))) return false;
    report();
    return true;
  }
}
