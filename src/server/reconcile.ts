// The periodic reconcile of `tagtrail serve`: a full sync every interval, to catch the events a
// registry dropped (distribution's notification queue is best-effort, in memory). It takes the
// store's crawl lock, so of several serve processes on one PostgreSQL only one crawls at a time;
// the others skip that round. An interrupted run leaves its checkpoint, and the next run (in any
// process) resumes after it.
import type { Logger } from 'pino';
import { isTagtrailError } from '../errors.js';
import type { Store } from '../catalog/store.js';
import type { RepositorySource } from '../catalog/discovery.js';
import { CRAWL_LOCK, type SyncSummary, sync } from '../catalog/sync.js';
import type { RegistryClient } from '../oci/registry.js';
import type { Metrics } from './metrics.js';

type ReconcileRunResult = 'complete' | 'interrupted' | 'failed' | 'locked';

interface ReconcilerOptions {
  store: Store;
  client: RegistryClient;
  registry: string;
  /** Seconds between the end of one run and the start of the next. */
  intervalSeconds: number;
  /** Seconds before the first run. Default 0: right away, to catch what happened while down. */
  initialDelaySeconds?: number;
  concurrency?: number;
  /** Read every new image config once for builder evidence. */
  readConfigs?: boolean;
  /** Where the list of repositories comes from (default: the registry's catalog). */
  source?: RepositorySource;
  logger?: Logger;
  metrics?: Metrics;
}

function summaryFields(s: SyncSummary): Record<string, unknown> {
  return {
    repositories: s.repositories,
    tags: s.tags,
    manifestsFetched: s.manifestsFetched,
    configsFetched: s.configsFetched,
    added: s.added,
    updated: s.updated,
    deleted: s.deleted,
    unchanged: s.unchanged,
    skipped: s.skipped,
    errors: s.errorCount,
    resumedAfter: s.resumedAfter,
    durationMs: s.durationMs,
  };
}

export class Reconciler {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<ReconcileRunResult> | undefined;
  private controller: AbortController | undefined;
  private stopped = false;

  constructor(private readonly options: ReconcilerOptions) {}

  start(): void {
    if (this.options.intervalSeconds <= 0) return;
    this.schedule((this.options.initialDelaySeconds ?? 0) * 1000);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runOnce().finally(() => {
        // Up to 10% jitter, so processes started together drift apart.
        const interval = this.options.intervalSeconds * 1000;
        this.schedule(interval + Math.floor(Math.random() * interval * 0.1));
      });
    }, ms);
  }

  /** One run now (if none is running in this process); resolves with how it went. */
  runOnce(): Promise<ReconcileRunResult> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<ReconcileRunResult> {
    const { store, client, registry, logger, metrics } = this.options;
    const controller = new AbortController();
    this.controller = controller;
    const started = Date.now();
    let result: ReconcileRunResult;
    try {
      const locked = await store.withLock(CRAWL_LOCK, () =>
        sync({
          client,
          store,
          registry,
          signal: controller.signal,
          ...(this.options.concurrency ? { concurrency: this.options.concurrency } : {}),
          readConfigs: this.options.readConfigs === true,
          ...(this.options.source ? { source: this.options.source } : {}),
          onRead: (what) => metrics?.registryReads.inc({ what, source: 'crawl' }),
          onWarning: (message) => logger?.warn({ message }, 'referrer ignored'),
        }),
      );
      if (!locked.ran) {
        logger?.info('reconcile skipped: another process is crawling the registry');
        result = 'locked';
      } else {
        const s = locked.value;
        result = s.complete ? 'complete' : 'interrupted';
        metrics?.crawlTagChanges.inc({ change: 'added' }, s.added);
        metrics?.crawlTagChanges.inc({ change: 'updated' }, s.updated);
        metrics?.crawlTagChanges.inc({ change: 'deleted' }, s.deleted);
        const fields = summaryFields(s);
        if (s.errorCount > 0) logger?.warn({ ...fields, firstErrors: s.errors.slice(0, 5) }, `reconcile ${result} with errors`);
        else logger?.info(fields, `reconcile ${result}`);
      }
    } catch (err) {
      result = 'failed';
      logger?.error({ err: { code: isTagtrailError(err) ? err.code : undefined, message: err instanceof Error ? err.message : String(err) } }, 'reconcile failed');
    } finally {
      this.controller = undefined;
    }
    metrics?.crawlRuns.inc({ result });
    if (result !== 'locked') metrics?.crawlDuration.set((Date.now() - started) / 1000);
    if (result === 'complete') metrics?.crawlLastSuccess.set(Date.now() / 1000);
    return result;
  }

  /** No further runs; a run in progress stops after its requests in flight and keeps its checkpoint. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.controller?.abort();
    await this.running?.catch(() => undefined);
  }
}
