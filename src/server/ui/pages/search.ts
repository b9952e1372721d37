// /search?q= : what the search box found, one section per reading of the query (a commit prefix
// and a pipeline id, say, or a ref and a repository name).
import { html } from 'hono/html';
import type { Page, RepositorySummary, TagItem } from '../../../catalog/types.js';
import { percent } from '../format.js';
import { type Html, type ViewContext, layout, pager, paths, tagTable, timeAgo } from '../html.js';
import { type SearchKind, type SearchTerm, describeTerm } from '../query.js';

export type SectionResult =
  | { term: SearchTerm; kind: 'images'; page: Page<TagItem> }
  | { term: SearchTerm; kind: 'repositories'; page: Page<RepositorySummary> }
  | { term: SearchTerm; kind: 'digest'; digest: string; tags: { repository: string; tag: string; updatedAt: Date }[] };

function isEmpty(s: SectionResult): boolean {
  return s.kind === 'digest' ? s.tags.length === 0 : s.page.items.length === 0;
}

export interface SearchPageData {
  q: string;
  /** Set when the page shows one reading only, e.g. after "more results". */
  only?: SearchKind;
  cursor?: string;
  limit?: number;
  error?: string;
  /** Every reading of the query, whether it found something or not. */
  terms: SearchTerm[];
  sections: SectionResult[];
}

export function searchPage(data: SearchPageData, ctx: ViewContext): Html {
  const title = data.q ? `Search: ${data.q}` : 'Search';
  const found = data.sections.filter((s) => !isEmpty(s));
  const several = data.terms.length > 1;
  let body: Html;
  if (data.error) {
    body = html`<h1>Search</h1><p class="notice" role="alert">${data.error}</p>${help()}`;
  } else if (data.q === '') {
    body = html`<h1>Search</h1>${help()}`;
  } else if (found.length === 0) {
    body = html`<h1>Search: ${data.q}</h1>
<p>Nothing found. Looked for: ${data.terms.map((t, i) => html`${i > 0 ? '; ' : ''}${describeTerm(t)}`)}.</p>
${help()}`;
  } else {
    body = html`<h1>Search: ${data.q}</h1>
${several ? html`<p class="muted">Read as: ${data.terms.map((t, i) => html`${i > 0 ? '; ' : ''}${describeTerm(t)}`)}. Readings that found nothing are left out.</p>` : ''}
${found.map((s) => section(s, data, ctx, several))}`;
  }
  return layout({ title, ctx: { ...ctx, q: data.q }, body });
}

function section(s: SectionResult, data: SearchPageData, ctx: ViewContext, several: boolean): Html {
  const heading = describeTerm(s.term);
  const kind = s.term.kind;
  // Several readings on one page: each shows its first results and links to a page of its own.
  if (s.kind === 'digest') return digestSection(s.digest, s.tags, heading, ctx);
  const next = s.page.nextCursor
    ? several
      ? paths.search(data.q, { kind, limit: data.limit?.toString() })
      : paths.search(data.q, { kind: data.only, limit: data.limit?.toString(), cursor: s.page.nextCursor })
    : undefined;
  const first = !several && data.cursor ? paths.search(data.q, { kind: data.only, limit: data.limit?.toString() }) : undefined;
  const id = `results-${kind}`;
  return html`<section aria-labelledby="${id}">
<h2 id="${id}">${heading}</h2>
${s.kind === 'images' ? tagTable(s.page.items, ctx, { showRepository: true, caption: heading }) : repositoryList(s.page.items, ctx)}
${pager(first, next, several ? `More for “${heading}”` : 'More results')}
</section>`;
}

function digestSection(digest: string, tags: { repository: string; tag: string; updatedAt: Date }[], heading: string, ctx: ViewContext): Html {
  const repositories = [...new Set(tags.map((t) => t.repository))];
  return html`<section aria-labelledby="results-digest">
<h2 id="results-digest">${heading}</h2>
<ul class="plain">${tags.map((t) => html`<li><a class="tag-name" href="${paths.tag(t.repository, t.tag)}">${t.repository}:${t.tag}</a> <span class="muted">updated ${timeAgo(t.updatedAt, ctx.now)}</span></li>`)}</ul>
<p class="muted">The manifest itself: ${repositories.map((r, i) => html`${i > 0 ? ', ' : ''}<a href="${paths.manifest(r, digest)}">${r}</a>`)}</p>
</section>`;
}

function repositoryList(items: readonly RepositorySummary[], ctx: ViewContext): Html {
  return html`<ul class="plain">${items.map(
    (r) =>
      html`<li><a class="tag-name" href="${paths.repository(r.name)}">${r.name}</a> <span class="muted">${r.tagCount} tag${r.tagCount === 1 ? '' : 's'}, ${percent(r.buildTagCount, r.tagCount)} with build details, updated ${timeAgo(r.lastUpdated, ctx.now)}</span></li>`,
  )}</ul>`;
}

function help(): Html {
  return html`<h2 id="how">What you can search for</h2>
<dl class="facts">
<dt>A commit</dt><dd>its SHA, or its first 7 or more hex digits: <code>4f2c1a9e</code></dd>
<dt>A pipeline</dt><dd>its id: <code>9001</code></dd>
<dt>A branch or tag</dt><dd>its name: <code>main</code>, <code>v1.4.0</code></dd>
<dt>An annotation</dt><dd><code>key=value</code>, e.g. <code>com.gitlab.ci.job_name=build</code>, or a key alone to find the images that carry it</dd>
<dt>A repository</dt><dd>part of its name: <code>group/app</code></dd>
<dt>An image digest</dt><dd><code>sha256:…</code></dd>
</dl>
<p class="muted">To force one reading, start with <code>commit:</code>, <code>pipeline:</code>, <code>ref:</code>, <code>repo:</code>, <code>digest:</code> or <code>key:</code>.</p>`;
}
