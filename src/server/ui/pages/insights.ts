// /insights: how images are built, week by week: builders, where build details come from, OCI or
// Docker media types, multi-platform images. Charts are server-drawn SVG (charts.ts), each
// followed by its figures as a table; the same report downloads as CSV.
import { html } from 'hono/html';
import { BUILDERS, type Builder } from '../../../catalog/builder.js';
import { BUILD_SOURCES, type BuildSource, MEDIA_FAMILIES, type MediaFamily } from '../../../catalog/derived.js';
import type { InsightsCounts, InsightsReport } from '../../../catalog/types.js';
import { INSIGHTS_BASIS } from '../../insights.js';
import { PALETTE, type Series, legend, stackedBars } from '../charts.js';
import { percent } from '../format.js';
import { type Html, type ViewContext, layout, withQuery } from '../html.js';

export const BUILDER_LABELS: Record<Builder, string> = {
  buildkit: 'BuildKit (buildx)',
  kaniko: 'kaniko',
  buildah: 'buildah or podman',
  docker: 'Docker classic builder',
  jib: 'Jib',
  ko: 'ko',
  unknown: 'unknown',
  unread: 'unknown: config not read',
};

const SOURCE_LABELS: Record<BuildSource, string> = {
  annotations: 'manifest annotations',
  referrer: 'referrer artifact',
  labels: 'config labels only',
  none: 'no build details',
};

const MEDIA_LABELS: Record<MediaFamily, string> = { oci: 'OCI', docker: 'Docker', other: 'other' };

export const WEEK_CHOICES = [12, 26, 52, 104] as const;

export interface InsightsPageData {
  report: InsightsReport;
  /** Verified images and images by pusher (verifications.ts), when the store gave them. */
  evidence?: { verified: number; pushedBy: Record<string, number> };
  namespace?: string;
  weeks: number;
}

function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The CSV of the report shown: same scope, same weeks. */
export function csvHref(report: InsightsReport): string {
  const lastDay = new Date(report.to.getTime() - 86_400_000);
  return withQuery('/api/v1/insights.csv', { namespace: report.namespace ?? undefined, repository: report.repository ?? undefined, from: day(report.from), to: day(lastDay) });
}

function jsonHref(report: InsightsReport): string {
  const lastDay = new Date(report.to.getTime() - 86_400_000);
  return withQuery('/api/v1/insights', { namespace: report.namespace ?? undefined, repository: report.repository ?? undefined, from: day(report.from), to: day(lastDay) });
}

function builderSeries(r: InsightsReport): Series[] {
  return BUILDERS.map((b, i) => ({ key: b, label: BUILDER_LABELS[b], color: PALETTE[i] ?? '#999999', values: r.weeks.map((w) => w.counts.builders[b]) }));
}

function sourceSeries(r: InsightsReport): Series[] {
  const colors: Record<BuildSource, string> = { annotations: '#009e73', referrer: '#0072b2', labels: '#e69f00', none: '#999999' };
  return BUILD_SOURCES.map((s) => ({ key: s, label: SOURCE_LABELS[s], color: colors[s], values: r.weeks.map((w) => w.counts.buildSources[s]) }));
}

function mediaSeries(r: InsightsReport): Series[] {
  const colors: Record<MediaFamily, string> = { oci: '#0072b2', docker: '#e69f00', other: '#999999' };
  return MEDIA_FAMILIES.map((m) => ({ key: m, label: MEDIA_LABELS[m], color: colors[m], values: r.weeks.map((w) => w.counts.mediaTypes[m]) }));
}

function multiSeries(r: InsightsReport): Series[] {
  return [
    { key: 'multi', label: 'multi-platform', color: '#0072b2', values: r.weeks.map((w) => w.counts.multiPlatform) },
    { key: 'single', label: 'single platform', color: '#999999', values: r.weeks.map((w) => w.counts.images - w.counts.multiPlatform) },
  ];
}

/** The figures behind a chart, week by week: the table every chart comes with. */
function figuresTable(caption: string, r: InsightsReport, series: readonly Series[]): Html {
  const rows = r.weeks.map((w, i) => ({ week: day(w.start), total: w.counts.images, values: series.map((s) => s.values[i] ?? 0) })).filter((row) => row.total > 0);
  return html`<details class="figures"><summary>${caption}: the figures</summary>
${
  rows.length === 0
    ? html`<p class="muted">No images in these weeks.</p>`
    : html`<div class="table-wrap"><table class="figures">
<caption class="visually-hidden">${caption}, by week</caption>
<thead><tr><th scope="col">Week of</th><th scope="col" class="num">Images</th>${series.map((s) => html`<th scope="col" class="num">${s.label}</th>`)}</tr></thead>
<tbody>${rows.map((row) => html`<tr><th scope="row" class="nowrap">${row.week}</th><td class="num">${row.total}</td>${row.values.map((v) => html`<td class="num">${v} <span class="muted">(${percent(v, row.total)})</span></td>`)}</tr>`)}</tbody>
</table></div>`
}
</details>`;
}

function chartSection(id: string, heading: string, desc: string, r: InsightsReport, series: Series[], mode: 'count' | 'share'): Html {
  const totals = series.map((s) => s.values.reduce((a, b) => a + b, 0));
  return html`<section class="chart-block" aria-labelledby="${id}-h">
<h2 id="${id}-h">${heading}</h2>
<figure>
${stackedBars({ id, title: heading, desc, bars: r.weeks.map((w) => day(w.start)), series, mode })}
<figcaption>${legend(series, totals)}</figcaption>
</figure>
${figuresTable(heading, r, series)}
</section>`;
}

function topBuilder(c: InsightsCounts): string {
  const best = BUILDERS.filter((b) => c.builders[b] > 0).sort((a, b) => c.builders[b] - c.builders[a])[0];
  return best ? `${BUILDER_LABELS[best]} (${percent(c.builders[best], c.images)})` : '—';
}

function groupsTable(r: InsightsReport, ctx: { weeks: number }): Html {
  if (r.groups.length === 0) return '';
  const what = r.groupBy === 'namespace' ? 'Namespace' : 'Repository';
  return html`<section aria-labelledby="groups-h"><h2 id="groups-h">By ${what.toLowerCase()}</h2>
<div class="table-wrap"><table class="cards groups">
<caption class="visually-hidden">Images by ${what.toLowerCase()}</caption>
<thead><tr><th scope="col">${what}</th><th scope="col" class="num">Images</th><th scope="col">Most used builder</th><th scope="col">With build details</th><th scope="col">OCI media types</th><th scope="col">Multi-platform</th></tr></thead>
<tbody>${r.groups.map((g) => {
    const withDetails = g.totals.images - g.totals.buildSources.none;
    const name = r.groupBy === 'namespace' ? html`<a class="tag-name" href="${withQuery('/insights', { namespace: g.name, weeks: ctx.weeks })}">${g.name}</a>` : html`<span class="tag-name">${g.name}</span>`;
    return html`<tr>
<td class="lead" data-label="${what}">${name}</td>
<td class="num" data-label="Images">${g.totals.images}</td>
<td data-label="Builder">${topBuilder(g.totals)}</td>
<td data-label="Build details">${percent(withDetails, g.totals.images)} <span class="muted">(${withDetails})</span></td>
<td data-label="OCI">${percent(g.totals.mediaTypes.oci, g.totals.images)}</td>
<td data-label="Multi-platform">${percent(g.totals.multiPlatform, g.totals.images)}</td>
</tr>`;
  })}</tbody></table></div></section>`;
}

export function insightsPage(data: InsightsPageData, ctx: ViewContext): Html {
  const r = data.report;
  const t = r.totals;
  const withDetails = t.images - t.buildSources.none;
  const scope = r.namespace ? html`namespace <strong>${r.namespace}</strong>` : 'all namespaces';
  const body = html`<h1>How images are built</h1>
<p>Weeks of ${day(r.from)} to ${day(new Date(r.to.getTime() - 86_400_000))}, ${scope}. ${INSIGHTS_BASIS}</p>
<form class="filter" method="get" action="/insights">
<label for="ns-filter">Namespace</label>
<input id="ns-filter" type="text" name="namespace" value="${data.namespace ?? ''}" maxlength="255" autocomplete="off" spellcheck="false" autocapitalize="off" placeholder="all">
<label for="weeks-filter">Weeks</label>
<select id="weeks-filter" name="weeks">${WEEK_CHOICES.map((w) => html`<option value="${String(w)}"${w === data.weeks ? html` selected` : ''}>${w}</option>`)}</select>
<button type="submit">Show</button>
${r.namespace ? html`<a href="${withQuery('/insights', { weeks: data.weeks })}">All namespaces</a>` : ''}
</form>
<p class="downloads"><a href="${csvHref(r)}" download>Download CSV</a> <a href="${jsonHref(r)}">JSON</a></p>
${
  t.images === 0
    ? html`<div class="notice"><p>No images were first tagged in these weeks${r.namespace ? ' in this namespace' : ''}.</p></div>`
    : html`<dl class="facts summary">
<dt>Images</dt><dd>${t.images}</dd>
<dt>With build details</dt><dd>${percent(withDetails, t.images)} (${withDetails})</dd>
<dt>OCI media types</dt><dd>${percent(t.mediaTypes.oci, t.images)} (${t.mediaTypes.oci})</dd>
<dt>Multi-platform</dt><dd>${percent(t.multiPlatform, t.images)} (${t.multiPlatform})</dd>
<dt>Builder not known</dt><dd>${t.builders.unknown + t.builders.unread} (${t.builders.unread} because the config was not read; <code>tagtrail sync --read-configs</code> reads it)</dd>
${data.evidence ? html`<dt>Verified by GitLab</dt><dd data-insight="verified">${data.evidence.verified}</dd>` : ''}
${data.evidence && Object.keys(data.evidence.pushedBy).length > 0 ? html`<dt>Pushed by</dt><dd data-insight="pushed-by">${Object.entries(data.evidence.pushedBy).sort((a, b) => b[1] - a[1]).map(([p, n]) => `${p} ${n}`).join(', ')}</dd>` : ''}
</dl>
${chartSection('chart-builders', 'Builders', 'Images per week, stacked by the tool that built them.', r, builderSeries(r), 'count')}
${chartSection('chart-details', 'Build details, by source', 'Share of each week’s images by where their build details come from.', r, sourceSeries(r), 'share')}
${chartSection('chart-media', 'OCI or Docker media types', 'Share of each week’s images by manifest media type.', r, mediaSeries(r), 'share')}
${chartSection('chart-multi', 'Multi-platform images', 'Share of each week’s images that are an index of more than one platform.', r, multiSeries(r), 'share')}
${groupsTable(r, data)}
${
  r.platforms.length > 0
    ? html`<section aria-labelledby="platforms-h"><h2 id="platforms-h">Platforms of multi-platform images</h2>
<ul class="plain">${r.platforms.map((p) => html`<li><code>${p.platform}</code> <span class="muted">${p.images} ${p.images === 1 ? 'image' : 'images'}</span></li>`)}</ul></section>`
    : ''
}`
}`;
  return layout({ title: 'Insights', ctx, body });
}
