// Prometheus metrics of one server: its own registry, so several apps in one process (tests)
// never collide on metric names.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'tagtrail_http_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'tagtrail_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route pattern and method.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly webhookEnvelopes = new Counter({
    name: 'tagtrail_webhook_envelopes_total',
    help: 'Notification envelopes received, by result: accepted, unauthorized, rejected (bad or oversized body), failed (retry expected).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly webhookEvents = new Counter({
    name: 'tagtrail_webhook_events_total',
    help: 'Notification events, by kind (tag-push, tag-delete, manifest-delete, ignored) and outcome (applied, superseded, duplicate, ignored).',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly webhookPushBatches = new Histogram({
    name: 'tagtrail_webhook_push_batch_size',
    help: 'Tag pushes the webhook sent to the catalog together, per batch: 1 when a push went alone, more when pushes waited and went together (a batch that failed counts once; its pushes are then written one by one).',
    buckets: [1, 2, 4, 8, 16],
    registers: [this.registry],
  });
  readonly registryReads = new Counter({
    name: 'tagtrail_registry_reads_total',
    help: 'Manifest bodies and config blobs read from the registry, by what and by whom (webhook, crawl).',
    labelNames: ['what', 'source'] as const,
    registers: [this.registry],
  });
  readonly crawlRuns = new Counter({
    name: 'tagtrail_reconcile_runs_total',
    help: 'Periodic reconcile runs, by result: complete, interrupted, failed, locked (another process was crawling).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly crawlLastSuccess = new Gauge({
    name: 'tagtrail_reconcile_last_success_timestamp_seconds',
    help: 'When the last complete reconcile run in this process finished (Unix time).',
    registers: [this.registry],
  });
  readonly crawlDuration = new Gauge({
    name: 'tagtrail_reconcile_last_duration_seconds',
    help: 'How long the last reconcile run in this process took.',
    registers: [this.registry],
  });
  readonly crawlTagChanges = new Counter({
    name: 'tagtrail_reconcile_tag_changes_total',
    help: 'Tag changes the reconcile found that no event had brought, by change (added, updated, deleted).',
    labelNames: ['change'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'tagtrail_' });
  }
}
