// Two `tagtrail serve` replicas (two processes of the built CLI) on one PostgreSQL database take
// interleaved pushes of the same tags from a real registry: several digests per tag, some digests
// shared between tags, events with increasing timestamps sent to alternating replicas, many at
// once and some out of order, some sent twice. Read back with SQL: every tag at the digest of its
// newest event, no event lost, the tag's ordering columns and history those of its events in time
// order, its search terms those of its digest, and the repository and insights counters equal
// to a count of the rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/catalog/open.js';
import { WEEK_MS, WEEK_ORIGIN } from '../../src/catalog/sql/insight-weeks.js';
import { type Variants, mountBlobs, pushBase, putVariant } from '../helpers/variants.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';
import { type Catalog, useBackend } from '../catalog/backends.js';
import { hex } from '../catalog/seed.js';
import { type ServeProcess, ensureBuilt, startServe } from './serve-process.js';
// A seeded PRNG (mulberry32), so a failure can be replayed.
import { prng } from '../../bench/catalog/common.js';

const SECRET = `replicas-secret-${hex(16)}`;
const MEDIA = 'application/vnd.docker.distribution.events.v1+json';
const REPOSITORIES = ['replicas/one', 'replicas/two'];
const TAGS = ['a', 'b', 'c', 'd'];
/** Events per tag, each to another digest. */
const DIGESTS = 8;
const IN_FLIGHT = 12;
const REVISION = 'org.opencontainers.image.revision';

interface PushEvent {
  repository: string;
  tag: string;
  digest: string;
  at: number;
}

function envelope(e: PushEvent): string {
  const timestamp = new Date(e.at).toISOString();
  return JSON.stringify({
    events: [{ id: hex(8), timestamp, action: 'push', target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: e.digest, repository: e.repository, tag: e.tag } }],
  });
}

async function post(base: string, body: string): Promise<Record<string, number>> {
  const res = await fetch(`${base}/api/v1/events`, { method: 'POST', headers: { 'content-type': MEDIA, authorization: SECRET }, body });
  const json = (await res.json()) as Record<string, number>;
  if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

beforeAll(() => {
  ensureBuilt();
});

describe('two serve replicas on one PostgreSQL database', () => {
  const backend = useBackend('postgres');
  let registry: TestRegistry;
  let catalog: Catalog;
  const replicas: ServeProcess[] = [];
  /** repository -> revision -> digest, and back. */
  const revisionOf = new Map<string, string>();
  const events: PushEvent[] = [];

  beforeAll(async () => {
    registry = await startRegistry();
    const direct = `http://${registry.directHost}`;
    const base: Variants = await pushBase(registry.directHost, 'replicas/base');
    // Per repository a pool of images; tag i's k-th event points at image (i + k) % pool, so
    // neighbouring tags share digests and the same manifest is often ingested by both replicas at once.
    const pool = TAGS.length + DIGESTS;
    const started = Date.now() - 60 * 60_000;
    for (const repository of REPOSITORIES) {
      await mountBlobs(direct, base, repository);
      const digests: string[] = [];
      for (let p = 0; p < pool; p++) {
        const revision = `${repository}#${p}-${hex(4)}`;
        const digest = await putVariant(direct, base, repository, `pool-${p}`, { [REVISION]: revision });
        digests.push(digest);
        revisionOf.set(digest, revision);
      }
      TAGS.forEach((tag, i) => {
        for (let k = 0; k < DIGESTS; k++) events.push({ repository, tag, digest: digests[(i + k) % pool]!, at: started + k * 60_000 + i * 100 });
      });
    }
    catalog = await backend().fresh();
    for (let r = 0; r < 2; r++) {
      replicas.push(
        await startServe([], {
          TAGTRAIL_LISTEN: '127.0.0.1:0',
          TAGTRAIL_REGISTRY: registry.host,
          TAGTRAIL_DB: catalog.url,
          TAGTRAIL_WEBHOOK_SECRET: SECRET,
          TAGTRAIL_RECONCILE_INTERVAL: '0',
        }),
      );
    }
  });

  afterAll(async () => {
    for (const r of replicas) await r.stop();
    await registry?.stop();
  });

  it('lose no event and never apply an older event of a tag after a newer one', async () => {
    // Each tag's events in time order, the tags of both repositories interleaved (so that many
    // events of one tag are in flight at once), then a third of the neighbours swapped: some
    // events overtake older ones.
    const random = prng(0x5eed);
    const rank = (e: PushEvent) => TAGS.indexOf(e.tag);
    const order = [...events].sort((x, y) => rank(x) - rank(y) || x.at - y.at || x.repository.localeCompare(y.repository));
    for (let i = 0; i + 1 < order.length; i++) if (random() < 0.33) [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
    // Every fifth event once more, to the other replica, at the end.
    const sends = [...order.map((e, i) => ({ e, to: i % 2 })), ...order.filter((_, i) => i % 5 === 0).map((e, i) => ({ e, to: (i + 1) % 2 }))];
    const totals: Record<string, number> = {};
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < sends.length) {
          const { e, to } = sends[next++]!;
          const result = await post(replicas[to]!.url, envelope(e));
          for (const [k, v] of Object.entries(result)) totals[k] = (totals[k] ?? 0) + v;
        }
      }),
    );
    expect(totals.missing ?? 0).toBe(0);
    expect(totals.unreadable ?? 0).toBe(0);
    expect((totals.applied ?? 0) + (totals.superseded ?? 0) + (totals.duplicate ?? 0)).toBe(sends.length);
    expect(totals.duplicate ?? 0).toBeGreaterThanOrEqual(sends.length - events.length);

    const tagRows = await catalog.sql(
      `SELECT r.name AS repository, g.id, g.name AS tag, g.digest, g.deleted_at, g.updated_at, g.last_kind, g.last_digest
       FROM tags g JOIN repositories r ON r.id = g.repository_id ORDER BY r.name, g.name`,
    );
    expect(tagRows.map((r) => `${String(r.repository)}:${String(r.tag)}`)).toEqual(REPOSITORIES.flatMap((repo) => TAGS.map((t) => `${repo}:${t}`)));
    const store = await openStore(catalog.url);
    try {
      for (const row of tagRows) {
        const mine = events.filter((e) => e.repository === row.repository && e.tag === row.tag).sort((x, y) => x.at - y.at);
        const newest = mine[mine.length - 1]!;
        const where = `${String(row.repository)}:${String(row.tag)}`;
        // The state and the key of the newest event that took effect (tagstate.ts).
        expect({ where, digest: row.digest, deleted: row.deleted_at, at: Number(row.updated_at), kind: Number(row.last_kind), last: row.last_digest }).toEqual({
          where,
          digest: newest.digest,
          deleted: null,
          at: newest.at,
          kind: 0,
          last: newest.digest,
        });
        // No event lost.
        const logged = await catalog.sql(`SELECT at, digest FROM tag_events WHERE tag_id = ${Number(row.id)} ORDER BY at`);
        expect(logged.map((l) => `${Number(l.at)} ${String(l.digest)}`)).toEqual(mine.map((e) => `${e.at} ${e.digest}`));
        // The history is the events in time order, newest first.
        const history = await store.tagHistory(row.repository as string, row.tag as string, { limit: 100 });
        expect(history?.entries.map((h) => `${h.since.getTime()} ${h.digest}`)).toEqual(
          [...mine].reverse().map((e) => `${e.at} ${e.digest}`),
        );
        // The terms are those of the digest, as of the newest event.
        const terms = await catalog.sql(`SELECT key, value, updated_at FROM tag_terms WHERE tag_id = ${Number(row.id)} AND key = '${REVISION}'`);
        expect(terms.map((t) => [t.value, Number(t.updated_at)])).toEqual([[revisionOf.get(newest.digest), newest.at]]);
        const stale = await catalog.sql(`SELECT count(*) AS n FROM tag_terms WHERE tag_id = ${Number(row.id)} AND updated_at <> ${newest.at}`);
        expect(Number(stale[0]?.n)).toBe(0);
      }
    } finally {
      await store.close();
    }

    // Counters written by many transactions at once add up to a count of the rows.
    const repositories = await catalog.sql(
      `SELECT r.name, r.live_tags, r.updated_at, r.first_seen, r.last_seen,
         (SELECT count(*) FROM tags g WHERE g.repository_id = r.id AND g.deleted_at IS NULL) AS live,
         (SELECT max(g.updated_at) FROM tags g WHERE g.repository_id = r.id) AS newest
       FROM repositories r ORDER BY r.name`,
    );
    for (const r of repositories) {
      const mine = events.filter((e) => e.repository === r.name).map((e) => e.at);
      expect({ name: r.name, live: Number(r.live_tags), updated: Number(r.updated_at), first: Number(r.first_seen), last: Number(r.last_seen) }).toEqual({
        name: r.name,
        live: Number(r.live),
        updated: Number(r.newest),
        first: Math.min(...mine),
        last: Math.max(...mine),
      });
    }
    // Each image's first week in its repository, and the weekly counts over those rows.
    const images = await catalog.sql(`SELECT r.name, i.digest, i.week FROM insight_images i JOIN repositories r ON r.id = i.repository_id ORDER BY r.name, i.digest`);
    const expected = new Map<string, number>();
    for (const e of events) {
      const key = `${e.repository} ${e.digest}`;
      expected.set(key, Math.min(expected.get(key) ?? Infinity, Math.floor((e.at - WEEK_ORIGIN) / WEEK_MS)));
    }
    expect(new Map(images.map((i) => [`${String(i.name)} ${String(i.digest)}`, Number(i.week)]))).toEqual(expected);
    const counted = await catalog.sql(
      `SELECT c.repository_id, c.week, sum(c.images) AS n, (SELECT count(*) FROM insight_images i WHERE i.repository_id = c.repository_id AND i.week = c.week) AS rows
       FROM insight_counts c GROUP BY c.repository_id, c.week`,
    );
    expect(counted.length).toBeGreaterThan(0);
    for (const c of counted) expect(Number(c.n)).toBe(Number(c.rows));
    const weeks = await catalog.sql('SELECT count(DISTINCT repository_id::text || week::text) AS n FROM insight_images');
    expect(counted.length).toBe(Number(weeks[0]?.n));
  });
});
