// SqlStore: the Store over SQL, shared by both dialects (sqlite.ts, postgres.ts supply the Driver).
// A façade: each method checks its input (checks.ts), opens the transaction a write needs and
// delegates to the file of its concern. A new concern is a new file here and a delegate below.
//
//   driver.ts      the seam to the databases (Queryable, Dialect, Driver) and shared functions
//   manifests.ts   manifests, config labels, unreadable manifests, one image read back
//   terms.ts       search terms: rebuilt in the same transaction as whatever changes them
//   tags.ts        tag events, tag state and history, crawls' reconciliation
//   search.ts      search, listings, statistics
//   insights.ts    derived per-manifest facts and the weekly report
//   referrers.ts   build-details referrers and the links of each repository's referrers tag
//   verifications.ts  verified builds and who pushed a manifest
//   evidence-weeks.ts the weekly aggregates of verified images and images by pusher
//   image-batch.ts many images read back at once (getImages)
//   read-scope-sql.ts  what a signed-in person may read, in SQL (every reader with a scope)
//   sessions.ts    signed-in sessions
//   gitlab-projects.ts, checkpoints.ts, migrate.ts
import { UsageError } from '../../errors.js';
import type { Annotations } from '../../oci/annotations.js';
import type { Migration } from '../migrations/types.js';
import type { Store, TagPush } from '../store.js';
import { MANIFEST_DELETE, SET, TAG_DELETE, type TagEvent } from '../tagstate.js';
import type {
  EventOutcome,
  ImageDetail,
  InsightsQuery,
  InsightsReport,
  LockResult,
  ManifestInsight,
  ManifestRecord,
  Page,
  ReconcileResult,
  ReferrerRecord,
  RepositorySummary,
  SearchQuery,
  StoreStats,
  TagHistory,
  TagItem,
} from '../types.js';
import { HISTORY_PAGE_SIZE, STORE_MAX_PAGE_SIZE } from '../paging.js';
import * as checkpoints from './checkpoints.js';
import { checkDigest, checkName, ms, validateRecord } from './checks.js';
import { type Dialect, type Driver, LOCK_LEVELS, type LockKey, LocksOutdated, type Queryable, cleanRecord } from './driver.js';
import { type GitlabProjectColumns, setGitlabProject } from './gitlab-projects.js';
import { getImages } from './image-batch.js';
import * as insights from './insights.js';
import * as manifests from './manifests.js';
import { migrate } from './migrate.js';
import * as refs from './referrers.js';
import * as search from './search.js';
import * as tags from './tags.js';
import * as verified from './verifications.js';
import { type WriteContext, evidenceChanged, lockEvidence } from './terms.js';
import { applyDeferredChanges, deferAggregateChanges, dropDeferredChanges, lockImagesOfTagSets } from './insight-weeks.js';
import { insightEvidence } from './evidence-weeks.js';
import { deferRepositoryCounters, dropRepositoryCounters, writeRepositoryCounters } from './repository-counters.js';
import type { ReadScope } from '../read-scope.js';
import { readableRepositories, readableSql, scopedImage, scopedImages } from './read-scope-sql.js';
import { type SessionRecord, deleteSession, findSession, putSession, setSessionToken } from './sessions.js';

export class SqlStore implements Store {
  readonly dialect: 'sqlite' | 'postgres';

  constructor(
    /** The database; public for the benchmarks' plans (bench/catalog/explain.ts), not for the product. */
    readonly driver: Driver,
    private readonly migrations: readonly Migration[],
  ) {
    this.dialect = driver.dialect.name;
  }

  private get d(): Dialect {
    return this.driver.dialect;
  }

  // ---- lifecycle

  async migrate(): Promise<number[]> {
    return migrate(this.driver, this.migrations);
  }

  async close(): Promise<void> {
    return this.driver.close();
  }

  async ping(): Promise<void> {
    await this.driver.all('SELECT 1');
  }

  /**
   * A write of tags, manifests or what they count in: its insights increments and repository
   * counters are written at its end (insight-weeks.ts, repository-counters.ts). `alongside`: it
   * locks what it touches and runs beside other such writes where the database allows
   * (PostgreSQL); else it runs alone.
   */
  private change<T>(fn: (q: Queryable) => Promise<T>, alongside: boolean): Promise<T> {
    const body = async (q: Queryable): Promise<T> => {
      deferAggregateChanges(q);
      deferRepositoryCounters(q, this.d);
      try {
        const result = await fn(q);
        await applyDeferredChanges(q);
        await writeRepositoryCounters(q);
        return result;
      } catch (err) {
        // What this write gathered is rolled back with it; the Queryable may serve the next
        // write of a shared transaction (a savepoint each), which must not add to it.
        dropDeferredChanges(q);
        dropRepositoryCounters(q);
        throw err;
      }
    };
    return alongside && this.driver.writeAlongside ? this.driver.writeAlongside(body) : this.driver.write(body);
  }

  withLock<T>(name: string, fn: () => Promise<T>): Promise<LockResult<T>> {
    checkName(name, 'lock name');
    return this.driver.withLock(name, fn);
  }

  // ---- manifests (manifests.ts)

  async hasManifest(digest: string): Promise<boolean> {
    checkDigest(digest);
    return manifests.hasManifest(this.driver, digest);
  }

  async lookupManifest(digest: string): Promise<{ stored: boolean; unreadable?: { code: string; reason: string } }> {
    checkDigest(digest);
    if (await manifests.hasManifest(this.driver, digest)) return { stored: true };
    const why = await manifests.unreadable(this.driver, digest);
    return why ? { stored: false, unreadable: why } : { stored: false };
  }

  async hasManifests(digests: readonly string[]): Promise<Set<string>> {
    for (const d of digests) checkDigest(d);
    return manifests.storedDigests(this.driver, digests);
  }

  async putManifest(record: ManifestRecord): Promise<{ inserted: boolean }> {
    validateRecord(record);
    return this.change((q) => manifests.putManifest(q, record), true);
  }

  async putManifests(records: readonly ManifestRecord[]): Promise<{ inserted: boolean }[]> {
    for (const record of records) validateRecord(record);
    if (records.length === 0) return [];
    return this.change((q) => manifests.putManifests(q, records), false);
  }

  async putConfigLabels(configDigest: string, labels: Annotations, config?: unknown): Promise<void> {
    checkDigest(configDigest, 'config digest');
    if (typeof labels !== 'object' || labels === null) throw new UsageError('labels must be a record of strings');
    await this.change((q) => manifests.putConfigLabels(q, configDigest, labels, config), true);
  }

  async hasReadConfig(configDigest: string): Promise<boolean> {
    checkDigest(configDigest, 'config digest');
    return manifests.hasReadConfig(this.driver, configDigest);
  }

  async markUnreadable(digest: string, code: string, reason: string, at: Date): Promise<void> {
    checkDigest(digest);
    await this.change((q) => manifests.markUnreadable(q, digest, code, reason, at), true);
  }

  async unreadable(digest: string): Promise<{ code: string; reason: string } | undefined> {
    checkDigest(digest);
    return manifests.unreadable(this.driver, digest);
  }

  async unreadableAmong(digests: readonly string[]): Promise<Map<string, { code: string; reason: string }>> {
    for (const d of digests) checkDigest(d);
    return manifests.unreadableAmong(this.driver, digests);
  }

  async getImage(digest: string, options: { repository?: string; scope?: ReadScope } = {}): Promise<ImageDetail | null> {
    checkDigest(digest);
    if (options.repository !== undefined) checkName(options.repository, 'repository');
    const detail = await manifests.getImage(this.driver, digest, options);
    return detail && options.scope ? scopedImage(this.driver, this.d, detail, options.scope, options.repository) : detail;
  }

  async getImages(digests: readonly string[], options: { repository?: string; scope?: ReadScope } = {}): Promise<Map<string, ImageDetail>> {
    for (const d of digests) checkDigest(d);
    if (options.repository !== undefined) checkName(options.repository, 'repository');
    const details = await getImages(this.driver, digests, options);
    return options.scope ? scopedImages(this.driver, this.d, details, options.scope, options.repository) : details;
  }

  async setGitlabProject(repository: string, project: GitlabProjectColumns): Promise<void> {
    await this.driver.write((q) => setGitlabProject(q, repository, project));
  }

  // ---- signed-in sessions (sessions.ts)

  putSession(session: SessionRecord): Promise<void> {
    return this.driver.write((q) => putSession(q, session));
  }

  findSession(id: string, now: Date): Promise<SessionRecord | undefined> {
    return findSession(this.driver, id, now);
  }

  setSessionToken(id: string, token: string): Promise<void> {
    return this.driver.write((q) => setSessionToken(q, id, token));
  }

  deleteSession(id: string, now: Date): Promise<void> {
    return this.driver.write((q) => deleteSession(q, id, now));
  }

  // ---- verified builds and pushers (verifications.ts)

  async recordVerifications(images: readonly { repository: string; digest: string }[], v: verified.VerifiedBuild): Promise<void> {
    for (const image of images) checkDigest(image.digest);
    // Alone: the images it counts as verified cannot change meanwhile (evidence-weeks.ts).
    await this.change(async (q) => {
      for (const image of images) await verified.recordVerification(q, image.repository, image.digest, v);
    }, false);
  }
  async recordPusher(digest: string, userAgent: string, pusher: string, at: Date): Promise<void> {
    checkDigest(digest);
    checkPusher({ userAgent, pusher });
    await this.change(async (q) => {
      // No image of this manifest can be counted meanwhile without its pusher (evidence-weeks.ts).
      await q.lock?.([{ level: 'evidence', key: `m:${digest}`, exclusive: true }]);
      await verified.recordPusher(q, digest, userAgent, pusher, at);
    }, true);
  }
  async pusherOf(digest: string): Promise<verified.PusherRecord | undefined> {
    return verified.pusherOf(this.driver, digest);
  }
  async verifiedInsights(query: InsightsQuery): Promise<{ verified: number; pushedBy: Record<string, number> }> {
    const window = insights.insightsWindow(query);
    // The repositories of the report (a signed-in person's readable ones only), as in insights().
    const ids = await insights.listedRepositories(this.driver, query, query.scope ? readableSql(this.d, query.scope, 'rs') : undefined);
    if (ids !== null && ids.length === 0) return { verified: 0, pushedBy: {} };
    return insightEvidence(this.driver, window, ids);
  }

  // ---- build-details referrers (referrers.ts)

  async hasReferrer(digest: string): Promise<boolean> {
    checkDigest(digest);
    return refs.hasReferrerRow(this.driver, digest);
  }

  async referrerSubject(digest: string): Promise<string | null> {
    checkDigest(digest);
    return refs.storedSubject(this.driver, digest);
  }

  async putReferrer(record: ReferrerRecord): Promise<void> {
    checkDigest(record.digest);
    checkDigest(record.subjectDigest, 'subject digest');
    await this.driver.write((q) => refs.insertReferrer(q, record, cleanRecord(record.annotations)));
  }

  async referrersTagDigest(repository: string, subjectDigest: string): Promise<string | null> {
    checkName(repository, 'repository');
    checkDigest(subjectDigest, 'subject digest');
    const repoId = await refs.repositoryId(this.driver, repository);
    return repoId === null ? null : refs.tagDigest(this.driver, repoId, subjectDigest);
  }

  async referrersTagSubjects(repository: string): Promise<string[]> {
    checkName(repository, 'repository');
    const repoId = await refs.repositoryId(this.driver, repository);
    return repoId === null ? [] : refs.tagSubjects(this.driver, repoId);
  }

  async setReferrersTag(repository: string, subjectDigest: string, indexDigest: string | null, referrerDigests: readonly string[]): Promise<void> {
    checkName(repository, 'repository');
    checkDigest(subjectDigest, 'subject digest');
    if (indexDigest !== null) checkDigest(indexDigest, 'referrers tag digest');
    await this.driver.write(async (q) => {
      const now = Date.now();
      const repoId = indexDigest === null ? await refs.repositoryId(q, repository) : await tags.ensureRepository(q, this.d, repository, now);
      if (repoId === null) return;
      if (await refs.replaceLinks(q, repoId, subjectDigest, indexDigest, referrerDigests, now)) await referrersChanged(q, [subjectDigest]);
    });
  }

  async removeReferrer(repository: string, referrerDigest: string): Promise<void> {
    checkName(repository, 'repository');
    checkDigest(referrerDigest);
    await this.driver.write(async (q) => {
      const repoId = await refs.repositoryId(q, repository);
      if (repoId === null) return;
      await referrersChanged(q, await refs.dropReferrer(q, repoId, referrerDigest));
    });
  }

  // ---- tags (tags.ts)

  async setTag(repository: string, tag: string, digest: string, at: Date, pushedBy?: { userAgent: string; pusher: string }): Promise<EventOutcome> {
    checkName(repository, 'repository');
    checkName(tag, 'tag');
    checkDigest(digest);
    if (pushedBy) checkPusher(pushedBy);
    const event: TagEvent = { at: ms(at, 'setTag'), kind: SET, digest };
    return this.change(async (q) => {
      if (pushedBy) pusherLock(q, digest);
      const outcome = await tags.tagEvent(q, this.d, repository, tag, event);
      if (pushedBy) await verified.recordPusher(q, digest, pushedBy.userAgent, pushedBy.pusher, at);
      return outcome;
    }, true);
  }

  async pushTag(push: TagPush): Promise<{ outcome: EventOutcome; inserted: boolean }> {
    return (await this.pushTags([push]))[0]!;
  }

  async pushTags(pushes: readonly TagPush[]): Promise<{ outcome: EventOutcome; inserted: boolean }[]> {
    // Every push is checked before anything is written: a bad one fails the call, which writes nothing.
    const events = pushes.map((push): TagEvent => {
      const { repository, tag, digest, at, manifest, pushedBy } = push;
      checkName(repository, 'repository');
      checkName(tag, 'tag');
      checkDigest(digest);
      if (manifest) {
        validateRecord(manifest);
        if (manifest.digest !== digest) throw new UsageError(`the tag push of ${digest} came with the manifest ${manifest.digest}`);
      }
      if (pushedBy) checkPusher(pushedBy);
      return { at: ms(at, 'pushTag'), kind: SET, digest };
    });
    if (pushes.length === 0) return [];
    // The pushes that carry a manifest, in order: putManifests answers each (a digest carried
    // twice, or as a child of an earlier record, was inserted by the first of them only).
    const carrying = pushes.flatMap((p, i) => (p.manifest ? [i] : []));
    return this.change(async (q) => {
      oneLockOrder(q);
      for (const p of pushes) if (p.pushedBy) pusherLock(q, p.digest);
      const put = carrying.length > 0 ? await manifests.putManifests(q, carrying.map((i) => pushes[i]!.manifest!)) : [];
      const inserted = new Map(carrying.map((i, k) => [i, put[k]!.inserted]));
      if (pushes.length > 1) {
        // Beside other writers: every tag in one lock call, after the manifests' evidence (two
        // calls of one level would break the lock order and run the write again alone).
        const tagKeys = new Set(pushes.map((p) => tags.tagLockKey(p.repository, p.tag)));
        await lockEvidence(q, [...new Set(pushes.map((p) => p.digest))], [...tagKeys].map((key) => ({ level: 'tag', key, exclusive: true }) as const));
        // Then the rows their tag events lock, in one order, so that two batches never wait on each other there.
        await lockImagesOfTagSets(q, pushes);
      }
      // With the manifest, its evidence lock is held (putManifests): the pusher goes first, so that
      // the tag's new image is counted under it as it is inserted (evidence-weeks.ts). Not when an
      // earlier push of the batch names one: the first pusher recorded stays, as pushTag of each.
      const named = new Set<string>();
      const pusherFirst = pushes.map((p) => {
        const first = p.pushedBy !== undefined && p.manifest !== undefined && !named.has(p.digest);
        if (p.pushedBy) named.add(p.digest);
        return first;
      });
      for (const [i, p] of pushes.entries()) if (pusherFirst[i]) await verified.recordPusher(q, p.digest, p.pushedBy!.userAgent, p.pushedBy!.pusher, p.at);
      // Tags on one image share its terms: nothing below changes what they are built from.
      const summaries: WriteContext['summaries'] = new Map();
      const results: { outcome: EventOutcome; inserted: boolean }[] = new Array(pushes.length);
      for (const i of tagEventOrder(pushes)) {
        const p = pushes[i]!;
        results[i] = { outcome: await tags.tagEvent(q, this.d, p.repository, p.tag, events[i]!, summaries), inserted: inserted.get(i) ?? false };
      }
      // The other pushers after the tags, in the pushes' order: the first one named stays.
      for (const [i, p] of pushes.entries()) if (p.pushedBy && !pusherFirst[i]) await verified.recordPusher(q, p.digest, p.pushedBy.userAgent, p.pushedBy.pusher, p.at);
      return results;
    }, true);
  }

  async deleteTag(repository: string, tag: string, at: Date): Promise<EventOutcome> {
    checkName(repository, 'repository');
    checkName(tag, 'tag');
    const event: TagEvent = { at: ms(at, 'deleteTag'), kind: TAG_DELETE, digest: '' };
    return this.change((q) => tags.tagEvent(q, this.d, repository, tag, event), true);
  }

  async deleteManifest(repository: string, digest: string, at: Date): Promise<{ tagsDeleted: number }> {
    checkName(repository, 'repository');
    checkDigest(digest);
    const event: TagEvent = { at: ms(at, 'deleteManifest'), kind: MANIFEST_DELETE, digest };
    return this.change((q) => tags.deleteManifest(q, this.d, repository, event), true);
  }

  async reconcileRepository(repository: string, liveTags: ReadonlyMap<string, string>, at: Date): Promise<ReconcileResult> {
    checkName(repository, 'repository');
    for (const [tag, digest] of liveTags) {
      checkName(tag, 'tag');
      checkDigest(digest);
    }
    const when = ms(at, 'reconcileRepository');
    return this.change((q) => tags.reconcileRepository(q, this.d, repository, liveTags, when), false);
  }

  async tagHistory(repository: string, tag: string, page: { limit?: number; cursor?: string; scope?: ReadScope } = {}): Promise<TagHistory | null> {
    checkName(repository, 'repository');
    checkName(tag, 'tag');
    if (page.scope && !(await readableRepositories(this.driver, this.d, [repository], page.scope)).has(repository)) return null;
    // The cursor is the start (ms) of the last entry shown: segments start at distinct, increasing times.
    const before = page.cursor === undefined ? undefined : /^[0-9]{1,15}$/.test(page.cursor) ? Number(page.cursor) : NaN;
    if (Number.isNaN(before)) throw new UsageError('the history cursor is not one this catalog handed out', { hint: 'pass back the nextCursor of the previous page' });
    const limit = Math.max(1, Math.min(page.limit ?? HISTORY_PAGE_SIZE, STORE_MAX_PAGE_SIZE));
    return tags.tagHistory(this.driver, repository, tag, before, limit);
  }

  // ---- queries (search.ts)

  async listRepositories(options: { q?: string; limit?: number; cursor?: string; scope?: ReadScope }): Promise<Page<RepositorySummary>> {
    return search.listRepositories(this.driver, options);
  }

  async listTags(repository: string, options: { limit?: number; cursor?: string; scope?: ReadScope }): Promise<Page<TagItem>> {
    checkName(repository, 'repository');
    return search.listTags(this.driver, repository, options);
  }

  async searchImages(query: SearchQuery): Promise<Page<TagItem>> {
    return search.searchImages(this.driver, query);
  }

  async stats(): Promise<StoreStats> {
    return search.catalogStats(this.driver);
  }

  // ---- insights (insights.ts)

  async manifestInsight(digest: string): Promise<ManifestInsight | null> {
    checkDigest(digest);
    return insights.manifestInsight(this.driver, digest);
  }

  async insights(query: InsightsQuery): Promise<InsightsReport> {
    const window = insights.insightsWindow(query);
    if (query.repository !== undefined) checkName(query.repository, 'repository');
    else if (query.namespace !== undefined) {
      checkName(query.namespace, 'namespace');
      if (query.namespace.includes('/')) {
        throw new UsageError(`namespace ${JSON.stringify(query.namespace.slice(0, 100))} has a slash`, { hint: 'a namespace is the first path segment of a repository; pass a whole path as repository' });
      }
    }
    // Decided once per repository (insights.ts), not once per event.
    return insights.insights(this.driver, query, window, query.scope ? readableSql(this.d, query.scope, 'rs') : undefined);
  }

  // ---- checkpoints (checkpoints.ts)

  async getCheckpoint<T = unknown>(key: string): Promise<T | undefined> {
    checkName(key, 'checkpoint key');
    return checkpoints.getCheckpoint<T>(this.driver, key);
  }

  async setCheckpoint(key: string, value: unknown): Promise<void> {
    checkName(key, 'checkpoint key');
    await this.driver.write((q) => checkpoints.setCheckpoint(q, key, value));
  }

  async deleteCheckpoint(key: string): Promise<void> {
    checkName(key, 'checkpoint key');
    await this.driver.write((q) => checkpoints.deleteCheckpoint(q, key));
  }
}

/**
 * Lets several writes share one transaction beside other writers, each locking what it touches
 * as it would alone (q.lock, in the order of driver.ts LOCK_LEVELS): a key the transaction holds
 * already (exclusively, or in any mode for a shared request) is not asked for again. A key it
 * lacks, of a level it has passed, cannot be taken without risking a deadlock: the transaction
 * then runs again alone (LocksOutdated), as any whose locks fall short.
 */
function oneLockOrder(q: Queryable): void {
  const lock = q.lock?.bind(q);
  if (!lock) return;
  const held = new Map<string, boolean>();
  let passed = -1;
  q.lock = async (keys: readonly LockKey[]): Promise<void> => {
    const lacking = keys.filter((k) => {
      const exclusive = held.get(`${k.level}:${k.key}`);
      return exclusive === undefined || (k.exclusive && !exclusive);
    });
    if (lacking.length === 0) return;
    const ranks = lacking.map((k) => LOCK_LEVELS.indexOf(k.level));
    if (Math.min(...ranks) <= passed) throw new LocksOutdated();
    await lock(lacking);
    passed = Math.max(...ranks);
    for (const k of lacking) {
      const name = `${k.level}:${k.key}`;
      held.set(name, (held.get(name) ?? false) || k.exclusive);
    }
  };
}

/**
 * The order a transaction writes these tag pushes in: by repository and digest, so that two
 * batches beside each other insert and lock their repositories' and images' rows in one order
 * and never wait on each other there (PostgreSQL would end one as a deadlock, after a second's
 * wait, to run it again). A tag pushed twice keeps its pushes in their order (which decides
 * their outcomes): then the batch goes in its own order.
 */
function tagEventOrder(pushes: readonly TagPush[]): number[] {
  const order = pushes.map((_, i) => i);
  if (new Set(pushes.map((p) => tags.tagLockKey(p.repository, p.tag))).size < pushes.length) return order;
  const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return order.sort((a, b) => compare(pushes[a]!.repository, pushes[b]!.repository) || compare(pushes[a]!.digest, pushes[b]!.digest) || a - b);
}

/**
 * A pusher is named: the evidence aggregates keep '' for an image without one (evidence-weeks.ts),
 * and the scan of the tags would count a pusher '' apart.
 */
function checkPusher(pushedBy: { userAgent: string; pusher: string }): void {
  checkName(pushedBy.pusher, 'pusher');
  if (typeof pushedBy.userAgent !== 'string') throw new UsageError('the user agent of a push must be a string');
}

/**
 * A transaction that records the pusher of `digest`: the manifest's evidence lock, whenever it
 * asks for it, is taken exclusively, so that no other writer counts an image of the manifest
 * without its pusher meanwhile (evidence-weeks.ts). The key is asked for with the transaction's
 * first evidence locks (the tag's, or the manifest's being stored), so no lock call is added.
 */
function pusherLock(q: Queryable, digest: string): void {
  const lock = q.lock?.bind(q);
  if (!lock) return;
  const key = `m:${digest}`;
  q.lock = (keys: readonly LockKey[]): Promise<void> => lock(keys.map((k) => (k.level === 'evidence' && k.key === key ? { ...k, exclusive: true } : k)));
}

/** The build details of these subjects changed: the images on them follow (terms.ts). */
function referrersChanged(q: Queryable, subjects: readonly string[]): Promise<void> {
  return evidenceChanged(q, new Set(subjects), new Set());
}
