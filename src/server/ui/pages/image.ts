// The tag page (/r/REPO/-/tags/TAG) and the manifest page (/r/REPO/-/manifests/DIGEST): every
// annotation of the index and of each platform manifest, grouped by platform, the raw manifest
// JSON, and the digests the tag pointed at before.
import { html } from 'hono/html';
import type { ImageDetail, ManifestInsight, TagHistory } from '../../../catalog/types.js';
import { BUILDER_LABELS } from './insights.js';
import type { Build } from '../../../gitlab/build.js';
import type { Annotations } from '../../../oci/annotations.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, isIndexMediaType } from '../../../oci/mediatypes.js';
import { formatBytes, platformText, prettyJson, shortDigest } from '../format.js';
import {
  type Html,
  type ViewContext,
  buildOfImage,
  commitView,
  copyButton,
  gitlabLink,
  imageReference,
  isAttestation,
  jobView,
  layout,
  noBuildDetails,
  paths,
  pipelineView,
  refView,
  repositoryCrumbs,
  tagReference,
  timeAgo,
  userView,
  valueText,
} from '../html.js';
import { annotationLabel, sortAnnotationKeys } from '../labels.js';
import { verificationFor, verifiedMark } from '../verified.js';

export interface ImagePageData {
  repository: string;
  /** Set for the tag page; absent for a page of one digest. */
  tag?: string;
  /** One page of the tag's history (newest first). */
  history?: TagHistory;
  /** Set when the history shown is an older page. */
  historyCursor?: string;
  /** The manifest the tag points at (or the digest asked for); null when it is not in the catalog. */
  detail: ImageDetail | null;
  /** The digest shown, even when its manifest is not in the catalog. */
  digest: string | null;
  /** The catalog's records of the index's children, by digest, for their raw JSON and labels. */
  children: ReadonlyMap<string, ImageDetail>;
  /** The build details of the tag's earlier digests (null: no details), for those in the catalog. */
  earlier?: ReadonlyMap<string, Build | null>;
  /** How the manifest was built, as the insights count it. */
  insight?: ManifestInsight | null;
}

const MEDIA_TYPE_NAMES: Record<string, string> = {
  [OCI_INDEX]: 'OCI image index (multi-platform)',
  [DOCKER_MANIFEST_LIST]: 'Docker manifest list (multi-platform)',
  [OCI_MANIFEST]: 'OCI image manifest',
  [DOCKER_MANIFEST]: 'Docker image manifest (schema 2)',
};

function mediaTypeText(mt: string): Html {
  const name = Object.hasOwn(MEDIA_TYPE_NAMES, mt) ? MEDIA_TYPE_NAMES[mt] : undefined;
  return name ? html`${name} <span class="muted"><code>${mt}</code></span>` : html`<code>${mt}</code>`;
}

export function imagePage(data: ImagePageData, ctx: ViewContext): Html {
  const { repository, tag, history, detail, digest } = data;
  const title = tag !== undefined ? `${repository}:${tag}` : `${repository}@${digest ? shortDigest(digest) : ''}`;
  const body = html`<h1>${title}</h1>
${detail ? verifiedMark(verificationFor(detail.verifications, repository)) : ''}
${history && history.digest === null ? html`<p class="notice">This tag was deleted ${history.deletedAt ? timeAgo(history.deletedAt, ctx.now) : ''}. Its history is below.</p>` : ''}
${digest ? facts(data, digest, ctx) : ''}
${detail ? buildSection(detail, data, ctx) : digest ? html`<p class="notice">The manifest <code>${digest}</code> is not in the catalog yet.</p>` : ''}
${detail ? annotationsSection(detail, data, ctx) : ''}
${history ? historySection(history, data, ctx) : ''}
${detail ? relatedSection(detail, data, ctx) : ''}
${detail ? rawSection(detail, data) : ''}`;
  const crumbs = repositoryCrumbs(repository, tag !== undefined ? tag : digest ? shortDigest(digest) : undefined);
  return layout({ title, ctx, crumbs, body });
}

function facts(data: ImagePageData, digest: string, ctx: ViewContext): Html {
  const { repository, tag, detail, history } = data;
  const pinned = imageReference(repository, digest, ctx);
  const platforms = detail ? detail.children.filter((c) => !isAttestation(c)).map((c) => platformText(c.platform)) : [];
  return html`<dl class="facts">
${tag !== undefined ? html`<dt>Pull by tag</dt><dd><code>${tagReference(repository, tag, ctx)}</code></dd>` : ''}
<dt>Pinned reference</dt><dd><code>${pinned}</code> ${copyButton(pinned, 'image reference', 'Copy image reference')}</dd>
<dt>Digest</dt><dd><code>${digest}</code></dd>
${detail ? html`<dt>Type</dt><dd>${mediaTypeText(detail.mediaType)}</dd>` : ''}
${platforms.length > 0 ? html`<dt>Platforms</dt><dd>${platforms.join(', ')}</dd>` : ''}
${detail?.pusher ? html`<dt>Pushed by</dt><dd>${detail.pusher.pusher} <span class="muted">(${detail.pusher.userAgent})</span></dd>` : ''}
${data.insight ? html`<dt>Built with</dt><dd>${BUILDER_LABELS[data.insight.builder]}${data.insight.evidence.length > 0 ? html` <span class="muted">(${data.insight.evidence[0]})</span>` : ''} <a href="/insights">insights</a></dd>` : ''}
${detail ? html`<dt>Manifest size</dt><dd>${formatBytes(detail.size)}</dd>` : ''}
${history ? html`<dt>Tag updated</dt><dd>${timeAgo(history.updatedAt, ctx.now)}</dd>` : detail ? html`<dt>First stored</dt><dd>${timeAgo(detail.storedAt, ctx.now)}</dd>` : ''}
</dl>`;
}

function labelsOf(detail: ImageDetail, children: ReadonlyMap<string, ImageDetail>): Annotations | null {
  if (detail.labels) return detail.labels;
  for (const c of detail.children) {
    const labels = children.get(c.digest)?.labels;
    if (labels && Object.keys(labels).length > 0) return labels;
  }
  return null;
}

function buildSection(detail: ImageDetail, data: ImagePageData, ctx: ViewContext): Html {
  const labels = labelsOf(detail, data.children);
  const build = buildOfImage(detail, labels);
  return html`<h2 id="build">Build</h2>
${build ? buildFacts(build, ctx) : html`<p class="notice">${noBuildDetails()}</p>`}`;
}

function buildFacts(b: Build, ctx: ViewContext): Html {
  const row = (name: string, value: Html | string | undefined | false): Html => (value ? html`<dt>${name}</dt><dd>${value}</dd>` : '');
  return html`${b.source === 'labels' ? html`<p class="muted">From the image's config labels: the manifest carries no build annotations.</p>` : ''}
${b.source === 'referrer' ? html`<p class="muted">build details from referrer <code>${b.referrer ?? ''}</code>: the manifest itself carries none.</p>` : ''}
<dl class="facts">
${row('Pipeline', b.pipeline && pipelineView(b, ctx))}
${row('Job', b.job && html`${jobView(b, ctx)}${b.job.name && b.job.id ? html` <span class="muted">#${b.job.id}</span>` : ''}`)}
${row('Branch or tag', (b.ref || b.mergeRequest) && refView(b, ctx))}
${row('Commit', b.commit && commitView(b, ctx, true))}
${row('Project', b.project && gitlabLink(b.project.url, b.project.path ?? b.project.url ?? '', ctx))}
${row('User', b.user && html`${userView(b)}${b.user.login && b.user.id ? html` <span class="muted">(id ${b.user.id})</span>` : ''}`)}
</dl>`;
}

/** Which platform manifest each attestation describes, from the index's descriptors. */
function attestationTargets(detail: ImageDetail): Map<string, string> {
  const out = new Map<string, string>();
  try {
    const index = JSON.parse(detail.raw.toString('utf8')) as { manifests?: { digest?: unknown; annotations?: Record<string, unknown> }[] };
    for (const m of index.manifests ?? []) {
      const target = m.annotations?.['vnd.docker.reference.digest'];
      if (typeof m.digest === 'string' && typeof target === 'string') out.set(m.digest, target);
    }
  } catch {
    // not JSON: no targets
  }
  return out;
}

function annotationsSection(detail: ImageDetail, data: ImagePageData, ctx: ViewContext): Html {
  const isIndex = isIndexMediaType(detail.mediaType) || detail.children.length > 0;
  const targets = attestationTargets(detail);
  const platformOf = new Map(detail.children.map((c) => [c.digest, platformText(c.platform)]));
  return html`<h2 id="annotations">Annotations</h2>
<section aria-labelledby="group-top">
<h3 id="group-top">${isIndex ? 'Index' : 'Manifest'} <code class="muted aside">${shortDigest(detail.digest)}</code></h3>
${annotationTable(detail.annotations, ctx, isIndex ? 'the index' : 'the manifest')}
${!isIndex && detail.labels && Object.keys(detail.labels).length > 0 ? labelsBlock(detail.labels, ctx, Object.keys(detail.annotations).length === 0) : ''}
</section>
${detail.children.map((c, i) => {
  const id = `group-${i + 1}`;
  const target = targets.get(c.digest);
  const name = isAttestation(c) ? `Attestation${target ? ` for ${platformOf.get(target) ?? shortDigest(target)}` : ''}` : platformText(c.platform);
  const childDetail = data.children.get(c.digest);
  return html`<section aria-labelledby="${id}">
<h3 id="${id}">${name} <code class="muted aside">${shortDigest(c.digest)}</code><a class="aside" href="${paths.manifest(data.repository, c.digest)}">manifest page</a></h3>
${c.annotations === null ? html`<p class="muted">This manifest is not in the catalog.</p>` : childAnnotations(c.annotations, detail.annotations, ctx, name)}
${childDetail?.labels && Object.keys(childDetail.labels).length > 0 ? labelsBlock(childDetail.labels, ctx) : ''}
</section>`;
})}`;
}

/**
 * A platform manifest's annotations: those of its own (or with another value than the index's)
 * in full, and those it shares with the index folded away, since annotate writes the same set
 * to both.
 */
function childAnnotations(own: Annotations, index: Annotations, ctx: ViewContext, name: string): Html {
  const differ: Annotations = Object.create(null);
  const same: Annotations = Object.create(null);
  for (const [k, v] of Object.entries(own)) (index[k] === v ? same : differ)[k] = v;
  const sameCount = Object.keys(same).length;
  if (sameCount === 0) return annotationTable(own, ctx, name);
  return html`${Object.keys(differ).length > 0 ? annotationTable(differ, ctx, name) : html`<p class="muted">No annotations other than the index's.</p>`}
<details class="same"><summary>${sameCount} annotation${sameCount === 1 ? '' : 's'} the same as on the index</summary>${annotationTable(same, ctx, `${name}, the same as on the index`)}</details>`;
}

function labelsBlock(labels: Annotations, ctx: ViewContext, open = false): Html {
  return html`<details${open ? html` open` : ''}><summary>Config labels (${Object.keys(labels).length})</summary>${annotationTable(labels, ctx, 'config labels')}</details>`;
}

function annotationTable(a: Annotations, ctx: ViewContext, of: string): Html {
  const keys = sortAnnotationKeys(Object.keys(a));
  if (keys.length === 0) return html`<p class="muted">No annotations.</p>`;
  return html`<div class="table-wrap"><table class="cards annotations">
<caption class="visually-hidden">Annotations of ${of}</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Value</th></tr></thead>
<tbody>${keys.map((k) => {
    const label = annotationLabel(k);
    return html`<tr><td data-label="Name">${label ? html`<span class="label">${label}</span><code class="key">${k}</code>` : html`<code>${k}</code>`}</td><td data-label="Value">${valueText(a[k] ?? '', ctx)}</td></tr>`;
  })}</tbody>
</table></div>`;
}

/** Raw manifest JSON shown on a page at most; a larger one is cut, with a link to all of it. */
export const MAX_RAW_ON_PAGE = 256 * 1024;

function rawBlock(d: ImageDetail, name: string, open: boolean): Html {
  const cut = d.raw.length > MAX_RAW_ON_PAGE;
  const whole = paths.rawManifest(d.digest);
  const summary = cut
    ? html`<span class="muted">(the first ${formatBytes(MAX_RAW_ON_PAGE)} as stored; <a href="${whole}">the whole manifest</a>)</span>`
    : html`<span class="muted">(shown indented; the digest covers the bytes as stored; <a href="${whole}">as stored</a>)</span>`;
  // A large manifest is neither parsed nor indented here: its first bytes as stored, then the link.
  const text = cut ? Buffer.from(d.raw.subarray(0, MAX_RAW_ON_PAGE)).toString('utf8') : prettyJson(d.raw);
  return html`<details${open ? html` open` : ''}><summary>${name} <code>${shortDigest(d.digest)}</code>, ${formatBytes(d.size)} ${summary}</summary>
<pre class="raw"><code>${text}</code></pre>${cut ? html`<p class="notice">Cut at ${formatBytes(MAX_RAW_ON_PAGE)}. <a href="${whole}">Open the whole manifest</a> (${formatBytes(d.raw.length)}).</p>` : ''}</details>`;
}

function rawSection(detail: ImageDetail, data: ImagePageData): Html {
  const block = rawBlock;
  const children = detail.children.map((c) => data.children.get(c.digest)).filter((d): d is ImageDetail => d !== undefined);
  const names = new Map(detail.children.map((c) => [c.digest, isAttestation(c) ? 'Attestation' : platformText(c.platform)]));
  return html`<h2 id="raw">Raw manifest</h2>
${block(detail, children.length > 0 || isIndexMediaType(detail.mediaType) ? 'Index' : 'Manifest', true)}
${children.map((d) => block(d, names.get(d.digest) ?? 'Manifest', false))}`;
}

const END_TEXT = { replaced: 'replaced', deleted: 'deleted' } as const;

function earlierBuild(digest: string, data: ImagePageData, ctx: ViewContext): Html {
  if (!data.earlier?.has(digest)) return html`<span class="muted">not in the catalog</span>`;
  const b = data.earlier.get(digest);
  if (!b) return html`<span class="muted">no build details</span>`;
  const parts: Html[] = [];
  if (b.pipeline) parts.push(html`pipeline ${pipelineView(b, ctx)}`);
  if (b.ref) parts.push(html`${b.ref.name}`);
  if (b.commit) parts.push(html`<code>${b.commit.sha.slice(0, 8)}</code>`);
  return html`${parts.map((p, i) => html`${i > 0 ? ', ' : ''}${p}`)}`;
}

function historySection(h: TagHistory, data: ImagePageData, ctx: ViewContext): Html {
  const { repository } = data;
  const earlier = h.entries.filter((e) => !(h.digest !== null && e.until === null));
  return html`<h2 id="history">Earlier digests of this tag</h2>
${
  earlier.length === 0
    ? html`<p class="muted">None: the tag has pointed at this digest since it was first seen${h.firstSeen ? html` (${timeAgo(h.firstSeen, ctx.now)})` : ''}.</p>`
    : html`<div class="table-wrap"><table class="cards history">
<caption class="visually-hidden">Digests this tag pointed at before, newest first</caption>
<thead><tr><th scope="col">Digest</th><th scope="col">Built by</th><th scope="col">From</th><th scope="col">Until</th><th scope="col">Then</th></tr></thead>
<tbody>${earlier.map(
        (e) => html`<tr>
<td class="lead" data-label="Digest"><a href="${paths.manifest(repository, e.digest)}"><code title="${e.digest}">${shortDigest(e.digest)}</code></a></td>
<td data-label="Built by">${earlierBuild(e.digest, data, ctx)}</td>
<td data-label="From" class="nowrap">${timeAgo(e.since, ctx.now)}</td>
<td data-label="Until" class="nowrap">${e.until ? timeAgo(e.until, ctx.now) : ''}</td>
<td data-label="Then">${e.end ? END_TEXT[e.end] : ''}</td>
</tr>`,
      )}</tbody></table></div>`
}
${historyPager(h, data)}`;
}

function historyPager(h: TagHistory, data: ImagePageData): Html {
  if (data.tag === undefined || (!h.nextCursor && !data.historyCursor)) return '';
  const tag = paths.tag(data.repository, data.tag);
  return html`<nav class="pager" aria-label="History pages">${data.historyCursor ? html`<a href="${tag}#history">« Newest digests</a>` : ''}${
    h.nextCursor ? html`<a href="${tag}?history=${encodeURIComponent(h.nextCursor)}#history" rel="next">Older digests »</a>` : ''
  }</nav>`;
}

function relatedSection(detail: ImageDetail, data: ImagePageData, ctx: ViewContext): Html {
  const others = detail.tags.filter((t) => !(t.repository === data.repository && t.tag === data.tag));
  if (others.length === 0 && detail.parents.length === 0) {
    return data.tag === undefined ? html`<h2 id="related">Tags</h2><p>No tag points at this manifest now.</p>` : '';
  }
  return html`<h2 id="related">Also</h2>
${others.length > 0 ? html`<p>Tagged as well:</p><ul class="plain">${others.map((t) => html`<li><a href="${paths.tag(t.repository, t.tag)}">${t.repository}:${t.tag}</a> <span class="muted">${timeAgo(t.updatedAt, ctx.now)}</span></li>`)}</ul>` : ''}
${detail.parents.length > 0 ? html`<p>Listed in the index${detail.parents.length > 1 ? 'es' : ''}:</p><ul class="plain">${detail.parents.map((p) => html`<li><a href="${paths.manifest(data.repository, p)}"><code>${p}</code></a></li>`)}</ul>` : ''}`;
}
