// tagtrail sync through faults, on both catalog backends: after each faulty crawl the catalog
// holds nothing the registry does not (no tag on a wrong digest, no half-read index), and a clean
// crawl afterwards converges on exactly what a clean crawl into an empty catalog gives.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/catalog/store.js';
import { sync } from '../../src/catalog/sync.js';
import { TagtrailError } from '../../src/errors.js';
import { RegistryClient } from '../../src/oci/registry.js';
import type { FaultRule } from '../helpers/fault-proxy.js';
import { useFaultProxy, useRegistry } from '../helpers/fixtures.js';
import { BACKENDS, useBackend } from '../catalog/backends.js';
import { type Seeded, seedRegistry } from '../catalog/seed.js';

const registry = useRegistry();
const proxy = useFaultProxy(() => ({ upstream: registry().url }));

function client(): RegistryClient {
  return new RegistryClient({ fetch: globalThis.fetch, credentials: () => undefined, retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 } });
}

/** Every tag of the seeded repositories as the catalog has it. */
async function snapshot(store: Store, seeded: Seeded): Promise<string[]> {
  const out: string[] = [];
  for (const repo of [seeded.app, seeded.multi, seeded.labels, seeded.plain].map((s) => s.repository)) {
    const page = await store.listTags(repo, { limit: 100 });
    for (const t of page.items) out.push(JSON.stringify({ r: t.repository, t: t.tag, d: t.digest, m: t.mediaType, p: t.platforms, a: t.annotations, l: t.labelAnnotations }));
  }
  return out.sort();
}

const FAULTS: { name: string; rule: FaultRule }[] = [
  { name: 'hang-up on every config blob GET', rule: { method: 'GET', path: /\/blobs\//, fault: { kind: 'hangup' } } },
  { name: 'reset mid-body on a child manifest GET', rule: { method: 'GET', path: /\/manifests\/sha256:/, nth: 1, fault: { kind: 'reset', afterBytes: 30 } } },
  { name: '503 on every tags list', rule: { method: 'GET', path: /\/tags\/list/, fault: { kind: 'status', status: 503 } } },
  { name: 'truncated catalog page', rule: { method: 'GET', path: /\/_catalog/, times: 1, fault: { kind: 'truncate' } } },
  { name: 'wrong Docker-Content-Digest on every manifest GET', rule: { method: 'GET', path: /\/manifests\//, fault: { kind: 'wrong-digest' } } },
  { name: 'wrong Docker-Content-Digest on every manifest HEAD', rule: { method: 'HEAD', path: /\/manifests\//, fault: { kind: 'wrong-digest' } } },
  { name: '500 on every manifest HEAD', rule: { method: 'HEAD', path: /\/manifests\//, fault: { kind: 'status', status: 500 } } },
  { name: 'every response cut short', rule: { method: 'GET', fault: { kind: 'truncate', afterBytes: 10 } } },
];

describe.each(BACKENDS)('sync through faults into %s', (backendName) => {
  const backend = useBackend(backendName);
  const prefix = `faults-${backendName}`;
  let seeded: Seeded;
  let truth: string[];

  beforeAll(async () => {
    seeded = await seedRegistry(registry().host, prefix);
    const { store } = await backend().fresh();
    proxy().clearRules();
    const clean = await sync({ client: client(), store, registry: proxy().host, prefix });
    expect(clean).toMatchObject({ complete: true, errorCount: 0, tags: 4 });
    truth = await snapshot(store, seeded);
    expect(truth).toHaveLength(4);
  });

  it.each(FAULTS.map((f) => [f.name, f.rule] as const))('%s: the catalog stays truthful, and a clean crawl converges', async (name, rule) => {
    const { store } = await backend().fresh();
    proxy().clearRules();
    const handle = proxy().addRule(rule);
    // A crawl either ends with a summary of its errors, or cannot start at all (our own error).
    const summary = await sync({ client: client(), store, registry: proxy().host, prefix }).catch((err: unknown) => {
      expect(err).toBeInstanceOf(TagtrailError);
      return { errorCount: -1 };
    });
    expect(handle.applied(), name).toBeGreaterThan(0);
    // Whatever the catalog holds now is true: each tag it has, it has on the registry's digest.
    const real = new Map(truth.map((x) => JSON.parse(x) as { r: string; t: string; d: string }).map((x) => [`${x.r}:${x.t}`, x.d]));
    for (const row of await snapshot(store, seeded)) {
      const { r, t, d } = JSON.parse(row) as { r: string; t: string; d: string };
      expect(d, `${r}:${t} after ${summary.errorCount} errors`).toBe(real.get(`${r}:${t}`));
    }
    proxy().clearRules();
    const final = await sync({ client: client(), store, registry: proxy().host, prefix });
    expect(final).toMatchObject({ complete: true, errorCount: 0 });
    expect(await snapshot(store, seeded)).toEqual(truth);
  });
});
