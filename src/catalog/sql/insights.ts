// Insights: per-manifest facts derived at ingest (builder, build-details source, media family,
// platform count; see builder.ts, derived.ts and details/build.ts) and the weekly report counted
// from them. deriveManifests runs in the writer's transaction whenever an image's evidence changes.
import { UsageError } from '../../errors.js';
import { type Annotations, emptyAnnotations } from '../../oci/annotations.js';
import { REFERENCE_PLATFORM } from '../../oci/manifest.js';
import { DOCKER_CONFIG, OCI_CONFIG, isIndexMediaType } from '../../oci/mediatypes.js';
import { BUILD_SOURCES, type BuildSource, buildDetailsSource } from '../../details/build.js';
import { BUILDERS, type Builder, type BuilderResult, type Confidence, detectBuilder } from '../builder.js';
import { MEDIA_FAMILIES, type MediaFamily, isRealPlatform, mediaFamily } from '../derived.js';
import { MAX_INSIGHT_WEEKS } from '../paging.js';
import { SET } from '../tagstate.js';
import type { InsightsCounts, InsightsQuery, InsightsReport, InsightsWeek, ManifestInsight } from '../types.js';
import { type Dialect, type Driver, IN_CHUNK, MAX_PARAMS, type Param, type Queryable, type Row, chunks, clean, marks, num, pairsOf } from './driver.js';
import { ms } from './checks.js';
import { WEEK_MS, WEEK_ORIGIN, manifestsChanged, namespaceOf, weekNumber } from './insight-weeks.js';
import { buildReferrerSql, buildReferrerSubjects } from './referrers.js';
import type { ReadableCondition } from './verifications.js';

/**
 * Recomputes the insight columns of these manifests, of the manifests with these configs, and
 * of the indexes listing any of them (after their children). See builder.ts and derived.ts.
 */
export async function deriveManifests(q: Queryable, digests: Set<string>, configs: Set<string>): Promise<void> {
  const images = new Set<string>();
  const indexes = new Set<string>();
  const sort = (rows: Row[]) => {
    for (const r of rows) (isIndexMediaType(r.media_type as string) ? indexes : images).add(r.digest as string);
  };
  if (configs.size === 0) {
    // The manifests and the indexes listing them in one statement per chunk: an index counts
    // where what it lists is an image (as below).
    for (const part of chunks([...digests], IN_CHUNK)) {
      const rows = await q.all<Row>(
        `SELECT m.digest, m.media_type, NULL AS child_digest FROM manifests m WHERE m.digest IN (${marks(part.length)})
         UNION SELECT m.digest, m.media_type, c.child_digest FROM manifest_children c JOIN manifests m ON m.id = c.parent_id WHERE c.child_digest IN (${marks(part.length)})`,
        [...part, ...part],
      );
      const own = rows.filter((r) => r.child_digest == null);
      sort(own);
      const listed = new Set(own.filter((r) => !isIndexMediaType(r.media_type as string)).map((r) => r.digest as string));
      sort(rows.filter((r) => r.child_digest != null && listed.has(r.child_digest as string)));
    }
  } else {
    for (const part of chunks([...digests], IN_CHUNK)) sort(await q.all<Row>(`SELECT digest, media_type FROM manifests WHERE digest IN (${marks(part.length)})`, part));
    for (const part of chunks([...configs], IN_CHUNK)) sort(await q.all<Row>(`SELECT digest, media_type FROM manifests WHERE config_digest IN (${marks(part.length)})`, part));
    for (const part of chunks([...images], IN_CHUNK)) {
      sort(await q.all<Row>(`SELECT DISTINCT m.digest, m.media_type FROM manifest_children c JOIN manifests m ON m.id = c.parent_id WHERE c.child_digest IN (${marks(part.length)})`, part));
    }
  }
  // Images first: an index's facts are read from its children's.
  for (const part of chunks([...images], IN_CHUNK)) await deriveMany(q, part);
  for (const part of chunks([...indexes], IN_CHUNK)) await deriveMany(q, part);
  // What the report counts of these images may have changed with them.
  await manifestsChanged(q, [...images, ...indexes]);
}

/** What deriving one manifest reads, for a chunk of manifests read together. */
interface DeriveFacts {
  annotations: Map<number, Annotations>;
  referred: Set<string>;
  children: Map<number, Row[]>;
  configs: Map<string, { builder: unknown; confidence: unknown; evidence: unknown; labels: Annotations }>;
}

/** Derives these manifests' insight columns (at most IN_CHUNK digests), reading what they need in a few statements for all. */
async function deriveMany(q: Queryable, digests: readonly string[]): Promise<void> {
  const d = q.dialect;
  // Where the dialect is known, each manifest's annotations and its config's row and labels come
  // with it, as JSON, in one statement.
  const pairs = (table: string, where: string) => (d ? d.jsonNested(`(SELECT ${d.jsonAgg(d.jsonArray(['x.key', 'x.value']))} FROM ${table} x WHERE ${where})`) : '');
  const manifests = await q.all<Row>(
    d
      ? `SELECT m.id, m.digest, m.media_type, m.raw, m.config_digest, ${pairs('annotations', 'x.manifest_id = m.id')} AS annotations,
           c.id AS config_id, c.builder AS config_builder, c.builder_confidence AS config_confidence, c.builder_evidence AS config_evidence,
           ${pairs('config_labels', 'x.config_id = c.id')} AS config_labels, CASE WHEN ${buildReferrerSql('m.digest')} THEN 1 ELSE 0 END AS referred
         FROM manifests m LEFT JOIN configs c ON c.digest = m.config_digest WHERE m.digest IN (${marks(digests.length)})`
      : `SELECT id, digest, media_type, raw, config_digest FROM manifests WHERE digest IN (${marks(digests.length)})`,
    [...digests],
  );
  if (manifests.length === 0) return;
  const ids = manifests.map((m) => num(m.id));
  const facts: DeriveFacts = { annotations: new Map(ids.map((id) => [id, emptyAnnotations()])), referred: new Set(), children: new Map(), configs: new Map() };
  if (d) {
    for (const m of manifests) {
      facts.annotations.set(num(m.id), pairsOf(m.annotations));
      if (m.config_id != null && !isIndexMediaType(m.media_type as string)) {
        facts.configs.set(m.config_digest as string, { builder: m.config_builder, confidence: m.config_confidence, evidence: m.config_evidence, labels: pairsOf(m.config_labels) });
      }
    }
  } else {
    for (const r of await q.all<Row>(`SELECT manifest_id, key, value FROM annotations WHERE manifest_id IN (${marks(ids.length)})`, ids)) {
      facts.annotations.get(num(r.manifest_id))![r.key as string] = r.value as string;
    }
  }
  // Build details recorded as referrers against these manifests (referrers.ts).
  facts.referred = d ? new Set(manifests.filter((m) => num(m.referred) === 1).map((m) => m.digest as string)) : await buildReferrerSubjects(q, manifests.map((m) => m.digest as string));
  const indexIds = manifests.filter((m) => isIndexMediaType(m.media_type as string)).map((m) => num(m.id));
  if (indexIds.length > 0) {
    const rows = await q.all<Row>(
      `SELECT c.parent_id, c.os, c.architecture, c.variant, cm.builder, cm.builder_confidence, cm.builder_evidence, cm.build_source
       FROM manifest_children c LEFT JOIN manifests cm ON cm.digest = c.child_digest WHERE c.parent_id IN (${marks(indexIds.length)}) ORDER BY c.parent_id, c.position`,
      indexIds,
    );
    for (const r of rows) facts.children.set(num(r.parent_id), [...(facts.children.get(num(r.parent_id)) ?? []), r]);
  }
  const configDigests = d ? [] : [...new Set(manifests.filter((m) => !isIndexMediaType(m.media_type as string) && m.config_digest != null).map((m) => m.config_digest as string))];
  if (configDigests.length > 0) {
    const byId = new Map<number, string>();
    for (const c of await q.all<Row>(`SELECT id, digest, builder, builder_confidence, builder_evidence FROM configs WHERE digest IN (${marks(configDigests.length)})`, configDigests)) {
      byId.set(num(c.id), c.digest as string);
      facts.configs.set(c.digest as string, { builder: c.builder, confidence: c.builder_confidence, evidence: c.builder_evidence, labels: emptyAnnotations() });
    }
    if (byId.size > 0) {
      for (const r of await q.all<Row>(`SELECT config_id, key, value FROM config_labels WHERE config_id IN (${marks(byId.size)})`, [...byId.keys()])) {
        facts.configs.get(byId.get(num(r.config_id))!)!.labels[r.key as string] = r.value as string;
      }
    }
  }
  const derived = manifests.map((m) => deriveOne(m, facts));
  // One UPDATE for the chunk: the derived columns of each manifest, joined by id.
  const columns = ['id', 'builder', 'builder_confidence', 'builder_evidence', 'build_source', 'media_family', 'platform_count'];
  for (const part of chunks(derived, Math.floor(MAX_PARAMS / columns.length))) {
    await q.run(
      `WITH d(${columns.join(', ')}) AS (VALUES ${part.map(() => '(CAST(? AS bigint), ?, ?, ?, ?, ?, CAST(? AS integer))').join(', ')})
       UPDATE manifests SET builder = d.builder, builder_confidence = d.builder_confidence, builder_evidence = d.builder_evidence,
         build_source = d.build_source, media_family = d.media_family, platform_count = d.platform_count
       FROM d WHERE manifests.id = d.id`,
      part.flat(),
    );
  }
}

/** The insight columns of one manifest, as [id, builder, confidence, evidence, source, media family, platforms]. */
function deriveOne(m: Row, facts: DeriveFacts): Param[] {
  const id = num(m.id);
  const digest = m.digest as string;
  const mediaType = m.media_type as string;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(m.raw as Uint8Array).toString('utf8'));
  } catch {
    json = null;
  }
  const annotations = facts.annotations.get(id) ?? emptyAnnotations();
  let result: BuilderResult;
  let source: BuildSource;
  let platforms = 1;
  const referrer = facts.referred.has(digest);
  if (isIndexMediaType(mediaType)) {
    const rows = facts.children.get(id) ?? [];
    const real = rows.filter((r) => isRealPlatform(r.os as string | null, r.architecture as string | null));
    platforms = new Set(real.map((r) => `${String(r.os)}/${String(r.architecture)}/${String(r.variant ?? '')}`)).size;
    const children = real.filter((r) => r.builder != null).map((r) => storedResult(r.builder, r.builder_confidence, r.builder_evidence));
    result = detectBuilder({ manifest: json, mediaType, annotations, children });
    source = buildDetailsSource({ annotations, referrer, children: real.filter((r) => r.build_source != null).map((r) => r.build_source as BuildSource) });
  } else {
    const own = detectBuilder({ manifest: json, mediaType, annotations, configRead: false });
    result = own;
    let labels: Annotations | undefined;
    const cfgType = (json as { config?: { mediaType?: unknown } } | null)?.config?.mediaType;
    const imageConfig = cfgType === OCI_CONFIG || cfgType === DOCKER_CONFIG;
    if (m.config_digest != null && imageConfig) {
      const cfg = facts.configs.get(m.config_digest as string);
      if (cfg) {
        labels = cfg.labels;
        const said = cfg.builder != null ? storedResult(cfg.builder, cfg.confidence, cfg.evidence) : detectBuilder({ manifest: {}, labels, configRead: true });
        if (own.builder === 'unread' || rank(said.confidence) > rank(own.confidence)) result = said;
      }
    } else if (own.builder === 'unread') {
      // An artifact, or a manifest without a config: there is no config to read.
      result = { builder: 'unknown', confidence: 'none', evidence: [] };
    }
    source = buildDetailsSource({ annotations, referrer, ...(labels ? { labels } : {}) });
  }
  return [id, result.builder, result.confidence, JSON.stringify(result.evidence.map(clean)), source, mediaFamily(mediaType), platforms];
}

export async function manifestInsight(db: Queryable, digest: string): Promise<ManifestInsight | null> {
  const r = (await db.all<Row>('SELECT builder, builder_confidence, builder_evidence, build_source, media_family, platform_count FROM manifests WHERE digest = ?', [digest]))[0];
  if (!r || r.builder == null) return null;
  const b = storedResult(r.builder, r.builder_confidence, r.builder_evidence);
  return {
    builder: b.builder,
    confidence: b.confidence,
    evidence: b.evidence,
    buildSource: (r.build_source as BuildSource | null) ?? 'none',
    mediaFamily: (r.media_family as MediaFamily | null) ?? 'other',
    platformCount: num(r.platform_count ?? 1),
  };
}

/** The repository filters of a report (scope, namespace or repository) on repositories `r`. */
function repositoryFilter(query: InsightsQuery, readable?: ReadableCondition): { where: string[]; params: Param[] } {
  const where: string[] = [];
  const params: Param[] = [];
  if (readable) {
    // Decided once per repository, not once per event.
    where.push(`r.id IN (SELECT rs.id FROM repositories rs WHERE ${readable.sql})`);
    params.push(...readable.params);
  }
  if (query.repository !== undefined) {
    where.push('r.name = ?');
    params.push(query.repository);
  } else if (query.namespace !== undefined) {
    // Repositories named NS or under NS/: a range on the name, no LIKE ('0' follows '/').
    where.push('(r.name = ? OR (r.name >= ? AND r.name < ?))');
    params.push(query.namespace, `${query.namespace}/`, `${query.namespace}0`);
  }
  return { where, params };
}

/**
 * The repositories a report counts, found through the name index and the read rule's own
 * subqueries: null for the whole catalog (no namespace, repository or read scope).
 */
export async function listedRepositories(db: Queryable, query: InsightsQuery, readable?: ReadableCondition): Promise<number[] | null> {
  if (!readable && query.repository === undefined && query.namespace === undefined) return null;
  const filter = repositoryFilter(query, readable);
  return (await db.all<Row>(`SELECT r.id FROM repositories r WHERE ${filter.where.join(' AND ')}`, filter.params)).map((r) => num(r.id));
}

/** A report's counts: group (namespace or repository), week number, builder, build source, media family, multi (0 or 1), images. */
type CountRow = [group: string, week: number, builder: unknown, buildSource: unknown, mediaFamily: unknown, multi: number, images: number];
/** A report's platforms: os, architecture, variant, images. */
type PlatformRow = [os: unknown, architecture: unknown, variant: unknown, images: number];

/** SQL for namespaceOf (insight-weeks.ts): a repository name's first segment. */
function namespaceSql(d: Dialect, column: string): string {
  return d.name === 'sqlite' ? `substr(${column}, 1, instr(${column} || '/', '/') - 1)` : `split_part(${column}, '/', 1)`;
}

/** The rows of a JSON array aggregated in SQL (SQLite answers text, pg parses json); none when NULL. */
function jsonRows<T>(value: unknown): T[] {
  if (value == null) return [];
  return (typeof value === 'string' ? JSON.parse(value) : value) as T[];
}

/**
 * The insights report from the weekly aggregates (insight-weeks.ts); `window` from insightsWindow,
 * the query already checked. One statement: the counts summed to the report's groups and weeks,
 * and the platforms summed, each as one JSON array, so that neither driver builds an object per
 * aggregate row (most of a report's time when it read rows).
 */
export async function insights(db: Driver, query: InsightsQuery, window: { from: number; to: number }, readable?: ReadableCondition): Promise<InsightsReport> {
  const d = db.dialect;
  const weeks: Param[] = [weekNumber(window.from), weekNumber(window.to)];
  const agg = (columns: string[]) => d.jsonAgg(d.jsonArray(columns));
  const inWeeks = 'a.week >= ? AND a.week < ?';
  // The platforms of multi-platform images, summed over the groups and weeks (`from` names `a`).
  const platformsOf = (from: string, where: string) =>
    `(SELECT ${agg(['p.os', 'p.architecture', 'p.variant', 'p.n'])}
      FROM (SELECT a.os, a.architecture, a.variant, sum(a.images) AS n FROM ${from} WHERE ${where} GROUP BY a.os, a.architecture, a.variant) p) AS platforms`;
  const countColumns = ['c.grp', 'c.week', 'c.builder', 'c.build_source', 'c.media_family', 'c.multi', 'c.n'];
  let sql: string;
  let params: Param[];
  if (!readable && query.repository === undefined && query.namespace === undefined) {
    // The whole catalog, grouped by namespace: the namespace level, one row per namespace, week
    // and counted dimensions (its key), whatever the number of repositories.
    sql = `SELECT (SELECT ${agg(countColumns)}
        FROM (SELECT a.namespace AS grp, a.week, a.builder, a.build_source, a.media_family, a.multi, a.images AS n
              FROM insight_namespace_counts a WHERE ${inWeeks}) c) AS counts,
      ${platformsOf('insight_namespace_platforms a', inWeeks)}`;
    params = [...weeks, ...weeks];
  } else {
    // A namespace, a repository or a person's repositories: the repository level of those only,
    // found first (through the name index and the read rule's own subqueries), then read through
    // their key (repository, week) whatever the number of other repositories. A list bound as a
    // parameter, not a subquery: PostgreSQL plans an index scan for a list of known length, but
    // may read the whole table into a hash join for the rows of a subquery it cannot count.
    const ids = (await listedRepositories(db, query, readable))!;
    if (ids.length === 0) return report(query, window, [], []);
    const listed = `${d.inIdList('a.repository_id')} AND ${inWeeks}`;
    // Grouped by namespace (a person's report), the counts are summed per namespace here, not in code.
    const group = groupByOf(query) === 'repository' ? 'r.name' : namespaceSql(d, 'r.name');
    sql = `SELECT (SELECT ${agg(countColumns)}
        FROM (SELECT ${group} AS grp, a.week, a.builder, a.build_source, a.media_family, a.multi, sum(a.images) AS n
              FROM insight_counts a JOIN repositories r ON r.id = a.repository_id WHERE ${listed}
              GROUP BY ${group}, a.week, a.builder, a.build_source, a.media_family, a.multi) c) AS counts,
      ${platformsOf('insight_platforms a', listed)}`;
    const list = d.idList(ids);
    params = [list, ...weeks, list, ...weeks];
  }
  const row = (await db.all<Row>(sql, params))[0];
  const counts = jsonRows<CountRow>(row?.counts).map((r): CountRow => [r[0], num(r[1]), r[2], r[3], r[4], num(r[5]), num(r[6])]);
  const platforms = jsonRows<PlatformRow>(row?.platforms).map((r): PlatformRow => [r[0], r[1], r[2], num(r[3])]);
  return report(query, window, counts, platforms);
}

/**
 * The insights report counted from the base tables (tag events, manifests, children): what the
 * aggregates must always equal. Tests and benchmarks compare the two; the product reads insights().
 */
export async function recountInsights(db: Queryable, query: InsightsQuery, window: { from: number; to: number }, readable?: ReadableCondition): Promise<InsightsReport> {
  // Events at or after the window's end cannot make an image's first week fall inside it, and
  // cannot change an earlier minimum: leave them out (tag_events_set serves the range).
  const filter = repositoryFilter(query, readable);
  const where: string[] = [`e.kind = ${SET}`, 'e.at < ?', ...filter.where];
  const params: Param[] = [window.to, ...filter.params];
  // An image is a (repository, manifest) pair; it appeared when a tag there first pointed at it.
  const images =
    `SELECT r.name AS repository, m.id AS manifest_id, m.builder, m.build_source, m.media_family, m.platform_count, min(e.at) AS first_at
     FROM tag_events e JOIN tags g ON g.id = e.tag_id JOIN repositories r ON r.id = g.repository_id JOIN manifests m ON m.digest = e.digest
     WHERE ${where.join(' AND ')}
     GROUP BY r.name, m.id, m.builder, m.build_source, m.media_family, m.platform_count
     HAVING min(e.at) >= ? AND min(e.at) < ?`;
  const windowParams: Param[] = [...params, window.from, window.to];
  const rows = await db.all<Row>(
    `SELECT repository, (first_at - ${WEEK_ORIGIN}) / ${WEEK_MS} AS wk, builder, build_source, media_family,
            CASE WHEN platform_count > 1 THEN 1 ELSE 0 END AS multi, count(*) AS n
     FROM (${images}) s GROUP BY repository, (first_at - ${WEEK_ORIGIN}) / ${WEEK_MS}, builder, build_source, media_family, CASE WHEN platform_count > 1 THEN 1 ELSE 0 END`,
    windowParams,
  );
  // Reference manifests (isReferenceDescriptor) are not platforms.
  const platformRows = await db.all<Row>(
    `SELECT c.os, c.architecture, c.variant, count(*) AS n
     FROM (${images}) s JOIN manifest_children c ON c.parent_id = s.manifest_id
     WHERE s.platform_count > 1 AND c.os IS NOT NULL AND NOT (c.os = '${REFERENCE_PLATFORM}' AND c.architecture = '${REFERENCE_PLATFORM}')
     GROUP BY c.os, c.architecture, c.variant`,
    windowParams,
  );
  const groupOf = (repository: string) => (groupByOf(query) === 'namespace' ? namespaceOf(repository) : repository);
  return report(
    query,
    window,
    rows.map((r): CountRow => [groupOf(r.repository as string), num(r.wk), r.builder, r.build_source, r.media_family, num(r.multi), num(r.n)]),
    platformRows.map((r): PlatformRow => [r.os, r.architecture, r.variant, num(r.n)]),
  );
}

/** A report's groups: the repositories of a namespace (or the one asked for), else namespaces. */
function groupByOf(query: InsightsQuery): 'namespace' | 'repository' {
  return query.repository !== undefined || query.namespace !== undefined ? 'repository' : 'namespace';
}

/** Counts (by group, already a namespace or a repository as groupByOf says) and platforms, as a report. */
function report(query: InsightsQuery, window: { from: number; to: number }, rows: readonly CountRow[], platformRows: readonly PlatformRow[]): InsightsReport {
  const groupBy = groupByOf(query);
  const weekStarts: number[] = [];
  for (let t = window.from; t < window.to; t += WEEK_MS) weekStarts.push(t);
  const totals = emptyCounts();
  const weeks = new Map<number, InsightsCounts>(weekStarts.map((t) => [t, emptyCounts()]));
  const groups = new Map<string, { totals: InsightsCounts; weeks: Map<number, InsightsCounts> }>();
  for (const r of rows) {
    const start = r[1] * WEEK_MS + WEEK_ORIGIN;
    const name = r[0];
    let g = groups.get(name);
    if (!g) {
      g = { totals: emptyCounts(), weeks: new Map(weekStarts.map((t) => [t, emptyCounts()])) };
      groups.set(name, g);
    }
    for (const c of [totals, weeks.get(start), g.totals, g.weeks.get(start)]) if (c) addCounts(c, r);
  }
  const weekList = (m: Map<number, InsightsCounts>): InsightsWeek[] => weekStarts.map((t) => ({ start: new Date(t), counts: m.get(t)! }));
  return {
    interval: 'week',
    from: new Date(window.from),
    to: new Date(window.to),
    namespace: query.repository === undefined ? (query.namespace ?? null) : null,
    repository: query.repository ?? null,
    groupBy,
    totals,
    weeks: weekList(weeks),
    groups: [...groups.entries()]
      .sort((a, b) => b[1].totals.images - a[1].totals.images || (a[0] < b[0] ? -1 : 1))
      .map(([name, g]) => ({ name, totals: g.totals, weeks: weekList(g.weeks) })),
    platforms: platformRows
      .map((r) => ({ platform: [r[0], r[1], r[2]].filter((v) => v != null && v !== '').join('/'), images: r[3] }))
      .sort((a, b) => b.images - a.images || (a.platform < b.platform ? -1 : 1)),
  };
}

// ---------------------------------------------------------------- insights: weeks and counts

/** The longest window one insights query covers. */
const DEFAULT_INSIGHT_WEEKS = 52;

function weekStart(t: number): number {
  return Math.floor((t - WEEK_ORIGIN) / WEEK_MS) * WEEK_MS + WEEK_ORIGIN;
}

/** [from, to) in ms, whole weeks: from the Monday of `from` to the Monday after `to`. */
export function insightsWindow(query: InsightsQuery): { from: number; to: number } {
  const to = weekStart(query.to === undefined ? Date.now() : ms(query.to, 'insights: to')) + WEEK_MS;
  const from = query.from === undefined ? to - DEFAULT_INSIGHT_WEEKS * WEEK_MS : weekStart(ms(query.from, 'insights: from'));
  if (from >= to) throw new UsageError('insights: from must be before to');
  if ((to - from) / WEEK_MS > MAX_INSIGHT_WEEKS) throw new UsageError(`insights: from and to are more than ${MAX_INSIGHT_WEEKS} weeks apart`, { hint: 'ask for a shorter window' });
  return { from, to };
}

const zeros = <K extends string>(keys: readonly K[]): Readonly<Record<K, number>> => Object.freeze(Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>);
const ZERO_BUILDERS = zeros(BUILDERS);
const ZERO_SOURCES = zeros(BUILD_SOURCES);
const ZERO_FAMILIES = zeros(MEDIA_FAMILIES);

/** A report has one per group and week (89 namespaces × 50 weeks at 1,000,000 images): copies of frozen zeros, not built key by key. */
function emptyCounts(): InsightsCounts {
  return { images: 0, builders: { ...ZERO_BUILDERS }, buildSources: { ...ZERO_SOURCES }, mediaTypes: { ...ZERO_FAMILIES }, multiPlatform: 0 };
}

function addCounts(c: InsightsCounts, r: CountRow): void {
  const n = r[6];
  const builder = (BUILDERS as readonly unknown[]).includes(r[2]) ? (r[2] as Builder) : 'unknown';
  const source = (BUILD_SOURCES as readonly unknown[]).includes(r[3]) ? (r[3] as BuildSource) : 'none';
  const family = (MEDIA_FAMILIES as readonly unknown[]).includes(r[4]) ? (r[4] as MediaFamily) : 'other';
  c.images += n;
  c.builders[builder] += n;
  c.buildSources[source] += n;
  c.mediaTypes[family] += n;
  if (r[5] === 1) c.multiPlatform += n;
}

const CONFIDENCE_RANK: Record<Confidence, number> = { none: 0, low: 1, medium: 2, high: 3 };

function rank(c: Confidence): number {
  return CONFIDENCE_RANK[c] ?? 0;
}

function storedResult(builder: unknown, confidence: unknown, evidence: unknown): BuilderResult {
  let list: string[] = [];
  try {
    const parsed: unknown = JSON.parse(String(evidence ?? '[]'));
    if (Array.isArray(parsed)) list = parsed.filter((e): e is string => typeof e === 'string');
  } catch {
    list = [];
  }
  const b = (BUILDERS as readonly string[]).includes(builder as string) ? (builder as Builder) : 'unknown';
  const c = confidence === 'high' || confidence === 'medium' || confidence === 'low' ? confidence : 'none';
  return { builder: b, confidence: c, evidence: list };
}


