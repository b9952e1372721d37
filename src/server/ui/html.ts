// The pieces every page is made of. Everything goes through hono's `html` tagged template, which
// escapes each interpolated value; nothing here builds markup from strings by hand. Attribute
// values are always quoted, so an escaped value cannot leave its attribute.
import { verifiedMark } from './verified.js';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ImageChild, ImageDetail, ReferrerInfo, TagItem } from '../../catalog/types.js';
import { type Build, mergeIndexAnnotations, resolveBuild } from '../../details/build.js';
import { labelsAsAnnotations } from '../../details/keys.js';
import type { Annotations } from '../../oci/annotations.js';
import { isReferenceDescriptor, platformNames } from '../../oci/manifest.js';
import { VERSION } from '../../version.js';
import { ASSETS } from './assets.js';
import { absoluteTime, relativeTime, shortDigest, shortSha } from './format.js';
import { type GitlabServer, isCommitSha, safeHref } from './links.js';

/** Markup, or '' for nothing (a plain string could only ever be the empty one). */
export type Html = HtmlEscapedString | Promise<HtmlEscapedString> | '';

/** What every view needs besides its data. */
export interface ViewContext {
  servers: readonly GitlabServer[];
  /** host[:port] of the registry, for image references people can pull. */
  registryHost?: string;
  now: Date;
  /** The text of the header's search box. */
  q?: string;
  /** Who is signed in (--auth gitlab), and the sign-out form's CSRF token. */
  viewer?: { username: string; csrf?: string };
}

// ---------------------------------------------------------------- paths

function segments(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

export const paths = {
  home: '/',
  docs: '/docs/annotate',
  insights: '/insights',
  repository: (name: string): string => `/r/${segments(name)}`,
  tag: (repository: string, tag: string): string => `/r/${segments(repository)}/-/tags/${encodeURIComponent(tag)}`,
  manifest: (repository: string, digest: string): string => `/r/${segments(repository)}/-/manifests/${encodeURIComponent(digest).replace(/%3A/g, ':')}`,
  /** The manifest's bytes as stored, served by the API. */
  rawManifest: (digest: string): string => `/api/v1/images/${encodeURIComponent(digest).replace(/%3A/g, ':')}/manifest`,
  search: (q: string, extra: Record<string, string | undefined> = {}): string => withQuery('/search', { q, ...extra }),
};

/** path?k=v&… with the undefined and empty values left out. */
export function withQuery(path: string, params: Record<string, string | number | undefined>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') qs.set(k, String(v));
  const s = qs.toString();
  return s === '' ? path : `${path}?${s}`;
}

// ---------------------------------------------------------------- the page

interface PageOptions {
  title: string;
  ctx: ViewContext;
  /** Links above the heading, e.g. Repositories › group › app. */
  crumbs?: { href?: string; text: string }[];
  body: Html;
}

function account(viewer: { username: string; csrf?: string }): Html {
  return html`<form class="account" action="/auth/logout" method="post"><span>Signed in as <strong class="signed-in-user">${viewer.username}</strong></span>${
    viewer.csrf !== undefined ? html`<input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit">Sign out</button>` : ''
  }</form>`;
}

export function layout({ title, ctx, crumbs, body }: PageOptions): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · tagtrail</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ASSETS.style.path}">
<script src="${ASSETS.copy.path}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site">
<a class="brand" href="${paths.home}">tagtrail</a>
<nav aria-label="Site"><a href="${paths.home}">Repositories</a><a href="${paths.insights}">Insights</a><a href="${paths.docs}">Adding build details</a></nav>
<form class="search" role="search" action="/search" method="get">
<label for="site-search" class="visually-hidden">Search images</label>
<input id="site-search" type="search" name="q" value="${ctx.q ?? ''}" maxlength="512" placeholder="Commit, pipeline, ref, key=value or repository" autocomplete="off" spellcheck="false" autocapitalize="off">
<button type="submit">Search</button>
</form>
${ctx.viewer ? account(ctx.viewer) : ''}
</header>
<main id="main" tabindex="-1">
${crumbs && crumbs.length > 0 ? breadcrumbs(crumbs) : ''}
${body}
</main>
<p id="copy-status" class="visually-hidden" role="status" aria-live="polite"></p>
<footer>tagtrail ${VERSION}</footer>
</body>
</html>
`;
}

function breadcrumbs(items: { href?: string; text: string }[]): Html {
  return html`<nav class="crumbs" aria-label="Breadcrumb">${items.map((c, i) => html`${i > 0 ? ' / ' : ''}${c.href ? html`<a href="${c.href}">${c.text}</a>` : c.text}`)}</nav>`;
}

/** Repositories › group › app, each part of the name linking to nothing but the last to the repository. */
export function repositoryCrumbs(repository: string, current?: string): { href?: string; text: string }[] {
  return [{ href: paths.home, text: 'Repositories' }, { href: paths.repository(repository), text: repository }, ...(current ? [{ text: current }] : [])];
}

// ---------------------------------------------------------------- small parts

export function timeAgo(at: Date, now: Date): Html {
  if (Number.isNaN(at.getTime())) return html`<span class="muted">unknown</span>`;
  return html`<time datetime="${at.toISOString()}" title="${absoluteTime(at)}">${relativeTime(at, now)}</time>`;
}

/** A link to a GitLab page when the URL is safe to link, else the text alone. */
export function gitlabLink(url: string | undefined, text: Html | string, ctx: ViewContext, className?: string): Html {
  const href = safeHref(url, ctx.servers);
  if (href === undefined) return className ? html`<span class="${className}">${text}</span>` : html`${text}`;
  return html`<a href="${href}" rel="noopener noreferrer"${className ? html` class="${className}"` : ''}>${text}</a>`;
}

/** An annotation value: a link when it is a URL on an allowed GitLab server, else text. */
export function valueText(value: string, ctx: ViewContext): Html {
  const href = safeHref(value, ctx.servers);
  return href === undefined ? html`<span class="value">${value}</span>` : html`<a class="value" href="${href}" rel="noopener noreferrer">${value}</a>`;
}

/** A button that copies `text`; hidden until the script shows it, so no dead control without JavaScript. */
export function copyButton(text: string, what: string, label: string): Html {
  return html`<button type="button" class="copy" data-copy="${text}" data-copy-what="${what}" aria-label="${label}" hidden><span class="copy-label">Copy</span></button>`;
}

export function imageReference(repository: string, digest: string, ctx: ViewContext): string {
  return ctx.registryHost ? `${ctx.registryHost}/${repository}@${digest}` : `${repository}@${digest}`;
}

export function tagReference(repository: string, tag: string, ctx: ViewContext): string {
  return ctx.registryHost ? `${ctx.registryHost}/${repository}:${tag}` : `${repository}:${tag}`;
}


/** The build details of a listed image, decided by resolveBuild (details/build.ts). */
function buildOf(annotations: Annotations, labelAnnotations?: Annotations | null, referrer?: ReferrerInfo): Build | undefined {
  return resolveBuild({ annotations, labelAnnotations, referrers: referrer ? [referrer] : [] }) ?? undefined;
}

/** Reference manifests (attestations, builder references: unknown/unknown) describe an image; they are not one of its platforms. */
export function isAttestation(c: ImageChild): boolean {
  return isReferenceDescriptor({ platform: c.platform });
}

/** The index's annotations and then each platform manifest's (the first value of a key wins), as the catalog merges them. */
function mergedAnnotations(detail: ImageDetail): Annotations {
  return mergeIndexAnnotations(detail.annotations, detail.children);
}

/** The build details of one manifest, given the config labels that apply to it (if read). */
export function buildOfImage(detail: ImageDetail, labels: Annotations | null): Build | undefined {
  return resolveBuild({ annotations: mergedAnnotations(detail), labelAnnotations: labels ? labelsAsAnnotations(labels) : null, referrers: detail.referrers ?? [] }) ?? undefined;
}

export function noBuildDetails(): Html {
  return html`No build details. <a href="${paths.docs}">How to add them</a>`;
}

// ---------------------------------------------------------------- build details

export function pipelineView(b: Build, ctx: ViewContext): Html {
  return b.pipeline ? gitlabLink(b.pipeline.url, `#${b.pipeline.id}`, ctx) : '';
}

export function jobView(b: Build, ctx: ViewContext): Html {
  if (!b.job) return '';
  const text = b.job.name ?? `#${b.job.id ?? ''}`;
  return gitlabLink(b.job.url, text, ctx);
}

const REF_KIND: Record<NonNullable<Build['ref']>['kind'], string> = { branch: 'branch', tag: 'tag', merge_request: 'merge request', unknown: 'ref' };

export function refView(b: Build, ctx: ViewContext): Html {
  const parts: Html[] = [];
  if (b.ref) parts.push(html`${gitlabLink(b.ref.url, b.ref.name, ctx)} <span class="kind">${REF_KIND[b.ref.kind]}</span>`);
  if (b.mergeRequest) parts.push(html`${gitlabLink(b.mergeRequest.url, `!${b.mergeRequest.iid}`, ctx)}${b.ref ? '' : html` <span class="kind">merge request</span>`}`);
  return html`${parts.map((p, i) => html`${i > 0 ? html`<br>` : ''}${p}`)}`;
}

export function commitView(b: Build, ctx: ViewContext, full = false): Html {
  if (!b.commit) return '';
  const sha = b.commit.sha;
  const link = gitlabLink(b.commit.url, html`<code>${full ? sha : shortSha(sha)}</code>`, ctx);
  // Only a value that is a commit SHA is offered to copy as one (annotations are untrusted).
  const copy = isCommitSha(sha) ? copyButton(sha, 'commit SHA', 'Copy commit SHA') : '';
  return full ? html`${link} ${copy}` : html`<span class="nowrap">${link} ${copy}</span>`;
}

export function userView(b: Build): Html {
  if (!b.user) return '';
  return html`${b.user.login ?? b.user.name ?? `user ${b.user.id ?? ''}`}`;
}

// ---------------------------------------------------------------- the tags table

interface TagTableOptions {
  /** Search results span repositories: name each image as repository:tag. */
  showRepository?: boolean;
  caption: string;
}

export function tagTable(items: readonly TagItem[], ctx: ViewContext, options: TagTableOptions): Html {
  return html`<div class="table-wrap"><table class="cards tags">
<caption class="visually-hidden">${options.caption}</caption>
<thead><tr>
<th scope="col">${options.showRepository ? 'Image' : 'Tag'}</th><th scope="col">Digest</th><th scope="col">Platforms</th><th scope="col">Updated</th>
<th scope="col">Pipeline</th><th scope="col">Job</th><th scope="col">Branch or tag</th><th scope="col">Commit</th><th scope="col">User</th><th scope="col"><span class="visually-hidden">Image reference</span></th>
</tr></thead>
<tbody>
${items.map((t) => tagRow(t, ctx, options))}
</tbody>
</table></div>`;
}

function tagRow(t: TagItem, ctx: ViewContext, options: TagTableOptions): Html {
  const build = buildOf(t.annotations, t.labelAnnotations, t.referrer);
  const platforms = platformNames(t.platforms);
  const name = options.showRepository ? `${t.repository}:${t.tag}` : t.tag;
  const cells = build
    ? html`<td data-label="Pipeline">${pipelineView(build, ctx)}</td>
<td data-label="Job">${jobView(build, ctx)}</td>
<td data-label="Branch or tag">${refView(build, ctx)}</td>
<td data-label="Commit">${commitView(build, ctx)}</td>
<td data-label="User">${userView(build)}${build.source === 'labels' ? html` <span class="kind">(from image labels)</span>` : ''}</td>`
    : html`<td class="none" colspan="5" data-label="Build">${noBuildDetails()}</td>`;
  return html`<tr data-tag="${t.tag}" data-repository="${t.repository}">
<td class="lead" data-label="Tag"><a class="tag-name" href="${paths.tag(t.repository, t.tag)}">${name}</a>${verifiedMark(t.verified, true)}</td>
<td data-label="Digest" class="nowrap"><code title="${t.digest}">${shortDigest(t.digest)}</code></td>
<td data-label="Platforms">${platforms.length > 0 ? platforms.join(', ') : html`<span class="muted">${t.mediaType === null ? 'not read yet' : 'single platform'}</span>`}</td>
<td data-label="Updated" class="nowrap">${timeAgo(t.updatedAt, ctx.now)}</td>
${cells}
<td data-label="Reference">${copyButton(imageReference(t.repository, t.digest, ctx), 'image reference', 'Copy image reference')}</td>
</tr>`;
}

/** Links to the first page and the next one; keyset pages only go forward. */
export function pager(first: string | undefined, next: string | undefined, nextText: string): Html {
  if (!first && !next) return '';
  return html`<nav class="pager" aria-label="Pages">${first ? html`<a href="${first}">« First page</a>` : ''}${next ? html`<a href="${next}" rel="next">${nextText} »</a>` : ''}</nav>`;
}
