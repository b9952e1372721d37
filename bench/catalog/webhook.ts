import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { openStore } from '../../src/catalog/open.js';
import { EVENTS_MEDIA_TYPE } from '../../src/catalog/events.js';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { createApp } from '../../src/server/app.js';
import { type PostgresCluster, createDatabase } from '../../test/helpers/postgres.js';
import type { TestRegistry } from '../../test/helpers/registry.js';
import { fmt } from '../lib.js';
import { type Stats, T0, int, load, log, now, passMiss, pool, stats } from './common.js';
import type { RegistryImage } from './registry.js';
import { WEBHOOK_CONCURRENCY, WEBHOOK_EVENTS, WEBHOOK_SECRET } from './settings.js';


interface WebhookRun {
  store: 'sqlite' | 'postgres';
  scenario: 'new manifest' | 'duplicate';
  inFlight: number;
  events: number;
  ms: number;
  eventsPerSecond: number;
  latency: Stats;
  outcomes: Record<string, number>;
  manifestGets: number;
}

function envelope(img: RegistryImage, host: string, at: number): string {
  return JSON.stringify({
    events: [
      {
        id: randomUUID(),
        timestamp: new Date(at).toISOString().replace('Z', '123456Z'),
        action: 'push',
        target: { mediaType: OCI_MANIFEST, digest: img.digest, size: img.size, length: img.size, repository: img.repository, url: `http://${host}/v2/${img.repository}/manifests/${img.digest}`, tag: img.tag },
        request: { id: randomUUID(), addr: '127.0.0.1:40000', host, method: 'PUT', useragent: 'containers/5.23.1 (github.com/containers/image)' },
        actor: {},
        source: { addr: 'registry:5000', instanceID: randomUUID() },
      },
    ],
  });
}

export async function webhookPart(work: string, registry: TestRegistry, cluster: PostgresCluster | undefined, images: RegistryImage[]): Promise<{ runs: WebhookRun[]; load: { before: number[]; after: number[] } }> {
  const before = load();
  const runs: WebhookRun[] = [];
  const stores: ['sqlite' | 'postgres', string][] = [['sqlite', `sqlite:${join(work, 'webhook.db')}`]];
  if (cluster) stores.push(['postgres', await createDatabase(cluster, 'webhook_bench')]);
  const n = Math.min(WEBHOOK_EVENTS, Math.floor(images.length / 2));
  for (const [dialect, url] of stores) {
    const store = await openStore(url);
    try {
      const client = new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined });
      const app = createApp({ store, webhook: { secret: WEBHOOK_SECRET, client, registry: registry.host, concurrency: WEBHOOK_CONCURRENCY } });
      // Warm-up: a few events of their own (tags n*2 .. n*2+19), so the first timed request does not pay for start-up.
      const post = async (body: string): Promise<Record<string, number>> => {
        const res = await app.request('/api/v1/events', { method: 'POST', headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': EVENTS_MEDIA_TYPE }, body });
        const json = (await res.json()) as Record<string, number>;
        if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${JSON.stringify(json)}`);
        return json;
      };
      for (const img of images.slice(2 * n, 2 * n + 20)) await post(envelope(img, registry.host, T0));
      for (const [inFlight, slice] of [
        [1, images.slice(0, n)],
        [WEBHOOK_CONCURRENCY, images.slice(n, 2 * n)],
      ] as const) {
        const bodies = slice.map((img, k) => envelope(img, registry.host, T0 + k * 1000));
        for (const scenario of ['new manifest', 'duplicate'] as const) {
          registry.resetRequests();
          const outcomes: Record<string, number> = {};
          const latencies: number[] = [];
          const started = now();
          await pool(bodies.length, inFlight, async (k) => {
            const t = now();
            const result = await post(bodies[k] as string);
            latencies.push(now() - t);
            for (const key of ['applied', 'superseded', 'duplicate', 'unreadable']) outcomes[key] = (outcomes[key] ?? 0) + (result[key] ?? 0);
          });
          const ms = now() - started;
          const run: WebhookRun = {
            store: dialect,
            scenario,
            inFlight,
            events: bodies.length,
            ms: Math.round(ms),
            eventsPerSecond: bodies.length / (ms / 1000),
            latency: stats(latencies),
            outcomes,
            manifestGets: registry.count({ method: 'GET', kind: 'manifest' }),
          };
          runs.push(run);
          log(`webhook ${dialect} ${scenario} ×${inFlight}: ${fmt(run.eventsPerSecond, 0)} events/s, ${run.manifestGets} manifest GETs, ${JSON.stringify(outcomes)}`);
        }
      }
    } finally {
      await store.close();
    }
  }
  return { runs, load: { before, after: load() } };
}


export function webhookMarkdown(runs: WebhookRun[]): string {
  const rows = runs.map((r) => {
    const goal = r.scenario === 'new manifest' ? `one manifest GET per event (${r.events})` : '0 manifest GETs';
    const expected = r.scenario === 'new manifest' ? r.manifestGets === r.events && r.outcomes.applied === r.events : r.manifestGets === 0 && r.outcomes.duplicate === r.events;
    return `| ${r.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} | ${r.scenario} | ${r.inFlight} | ${int(r.events)} | **${fmt(r.eventsPerSecond, 0)}** | ${fmt(r.latency.p50, 2)} | ${fmt(r.latency.p95, 2)} | ${int(r.manifestGets)} | ${Object.entries(r.outcomes).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ')} | ${goal} | ${passMiss(expected)} |`;
  });
  return `## 4. Webhook ingest

\`createApp(...).request('/api/v1/events')\` in process, one tag push per envelope (as distribution sends them), the manifest read
from the real registry through the counting proxy. "new manifest": the registry holds the manifest, the catalog does not yet
(a GET, putManifest, setTag); "duplicate": the same envelope again (no registry read). One request at a time (distribution's
queue per endpoint) and ${WEBHOOK_CONCURRENCY} at a time.

| store | scenario | in flight | events | events/s | p50 ms | p95 ms | manifest GETs | outcomes | goal | result |
|---|---|---:|---:|---:|---:|---:|---:|---|---|---|
${rows.join('\n')}

There is no fixed rate goal; the request counts are the checks.`;
}

