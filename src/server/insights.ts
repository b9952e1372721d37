// The insights report as the API serves it: JSON with shares next to the counts, and CSV
// (RFC 4180, safe to open in a spreadsheet) with one row per week and scope.
import { BUILDERS } from '../catalog/builder.js';
import { MEDIA_FAMILIES } from '../catalog/derived.js';
import { BUILD_SOURCES } from '../details/build.js';
import type { InsightsCounts, InsightsReport } from '../catalog/types.js';

/** What an image is and when it counts: the same sentence in the API, the CSV and the page. */
export const INSIGHTS_BASIS =
  'An image is a manifest a tag pointed at, counted once per repository, in the week (Monday to Sunday, UTC) a tag of that repository first pointed at it.';

function share(n: number, of: number): number {
  return of === 0 ? 0 : Math.round((n / of) * 10_000) / 10_000;
}

function shares(r: Record<string, number>, of: number): Record<string, number> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, share(v, of)]));
}

function countsItem(c: InsightsCounts): Record<string, unknown> {
  const withDetails = c.images - c.buildSources.none;
  return {
    images: c.images,
    builders: c.builders,
    buildSources: c.buildSources,
    mediaTypes: c.mediaTypes,
    multiPlatform: c.multiPlatform,
    shares: {
      builders: shares(c.builders, c.images),
      buildSources: shares(c.buildSources, c.images),
      withBuildDetails: share(withDetails, c.images),
      mediaTypes: shares(c.mediaTypes, c.images),
      multiPlatform: share(c.multiPlatform, c.images),
    },
  };
}

function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function insightsItem(r: InsightsReport): Record<string, unknown> {
  return {
    interval: r.interval,
    from: day(r.from),
    to: day(r.to),
    namespace: r.namespace,
    repository: r.repository,
    groupBy: r.groupBy,
    basis: INSIGHTS_BASIS,
    totals: countsItem(r.totals),
    weeks: r.weeks.map((w) => ({ week: day(w.start), ...countsItem(w.counts) })),
    groups: r.groups.map((g) => ({ name: g.name, totals: countsItem(g.totals), weeks: g.weeks.map((w) => ({ week: day(w.start), ...countsItem(w.counts) })) })),
    platforms: r.platforms,
  };
}

// ---------------------------------------------------------------- CSV

/**
 * One CSV field: a text cell that a spreadsheet would read as a formula (starting with = + - @,
 * or a tab or carriage return) gets a leading apostrophe; a field holding a comma, quote or line
 * break is quoted, quotes doubled (RFC 4180).
 */
export function csvField(v: string | number): string {
  if (typeof v === 'number') return String(v);
  let s = v;
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(fields: readonly (string | number)[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

const BUILDER_COLUMNS: Record<(typeof BUILDERS)[number], string> = {
  buildkit: 'builder_buildkit',
  kaniko: 'builder_kaniko',
  buildah: 'builder_buildah',
  docker: 'builder_docker_classic',
  jib: 'builder_jib',
  ko: 'builder_ko',
  unknown: 'builder_unknown',
  unread: 'builder_unknown_config_not_read',
};

const CSV_HEADER = [
  'week_start',
  'scope',
  'name',
  'images',
  ...BUILDERS.map((b) => BUILDER_COLUMNS[b]),
  ...BUILD_SOURCES.map((s) => `build_details_${s}`),
  'build_details_share',
  ...MEDIA_FAMILIES.map((m) => `media_type_${m}`),
  'multi_platform',
  'multi_platform_share',
];

function csvCounts(week: string, scope: string, name: string, c: InsightsCounts): string {
  return csvLine([
    week,
    scope,
    name,
    c.images,
    ...BUILDERS.map((b) => c.builders[b]),
    ...BUILD_SOURCES.map((s) => c.buildSources[s]),
    share(c.images - c.buildSources.none, c.images),
    ...MEDIA_FAMILIES.map((m) => c.mediaTypes[m]),
    c.multiPlatform,
    share(c.multiPlatform, c.images),
  ]);
}

/** Rows per week: the whole scope first, then each namespace (or repository); a `total` row per scope at the end. */
export function insightsCsv(r: InsightsReport): string {
  const scopeName = r.repository ?? r.namespace ?? '';
  const scope = r.repository ? 'repository' : r.namespace ? 'namespace' : 'all';
  const out: string[] = [csvLine(CSV_HEADER)];
  r.weeks.forEach((w, i) => {
    out.push(csvCounts(day(w.start), scope, scopeName, w.counts));
    if (!r.repository) for (const g of r.groups) out.push(csvCounts(day(w.start), r.groupBy, g.name, g.weeks[i]!.counts));
  });
  out.push(csvCounts('total', scope, scopeName, r.totals));
  if (!r.repository) for (const g of r.groups) out.push(csvCounts('total', r.groupBy, g.name, g.totals));
  return out.join('');
}

/** tagtrail-insights[-SCOPE]-FROM-TO.csv, with only safe characters. */
export function csvFilename(r: InsightsReport): string {
  const scope = (r.repository ?? r.namespace ?? '').replace(/[^a-z0-9._-]+/g, '_');
  return `tagtrail-insights${scope ? `-${scope}` : ''}-${day(r.from)}-${day(r.to)}.csv`;
}
