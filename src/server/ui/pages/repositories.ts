// / : every repository in the catalog, filtered by name, with its tag count and the share of
// tags that carry build details.
import { html } from 'hono/html';
import type { Page, RepositorySummary, TagItem } from '../../../catalog/types.js';
import { percent } from '../format.js';
import { type Html, type ViewContext, layout, pager, paths, repositoryCrumbs, tagReference, tagTable, timeAgo, withQuery } from '../html.js';

export function repositoriesPage(page: Page<RepositorySummary>, filter: { q: string; cursor?: string; limit?: number }, ctx: ViewContext): Html {
  const { items } = page;
  const limit = filter.limit;
  const body = html`<h1>Repositories</h1>
<form class="filter" method="get" action="${paths.home}">
<label for="repo-filter">Filter by name</label>
<input id="repo-filter" type="search" name="q" value="${filter.q}" maxlength="512" autocomplete="off" spellcheck="false" autocapitalize="off">
${limit ? html`<input type="hidden" name="limit" value="${String(limit)}">` : ''}
<button type="submit">Filter</button>
${filter.q ? html`<a href="${paths.home}">Show all</a>` : ''}
</form>
${
  items.length === 0
    ? filter.q
      ? html`<p>No repository name contains “${filter.q}”.</p>`
      : html`<div class="notice"><p>The catalog is empty.</p><p>Fill it with <code>tagtrail sync --registry URL</code>, or point the registry's notifications at <code>/api/v1/events</code> of this server.</p></div>`
    : html`<div class="table-wrap"><table class="cards repositories">
<caption class="visually-hidden">Repositories${filter.q ? `, names containing “${filter.q}”` : ''}</caption>
<thead><tr><th scope="col">Repository</th><th scope="col">Tags</th><th scope="col">With build details</th><th scope="col">Last updated</th></tr></thead>
<tbody>
${items.map(
  (r) => html`<tr>
<td class="lead" data-label="Repository"><a class="tag-name" href="${paths.repository(r.name)}">${r.name}</a></td>
<td class="num" data-label="Tags">${r.tagCount}</td>
<td data-label="With build details"><meter min="0" max="${String(Math.max(r.tagCount, 1))}" value="${String(r.buildTagCount)}" aria-hidden="true"></meter> ${percent(r.buildTagCount, r.tagCount)} <span class="muted">(${r.buildTagCount} of ${r.tagCount})</span></td>
<td data-label="Last updated" class="nowrap">${timeAgo(r.lastUpdated, ctx.now)}</td>
</tr>`,
)}
</tbody></table></div>`
}
${pager(filter.cursor ? withQuery(paths.home, { q: filter.q, limit }) : undefined, page.nextCursor ? withQuery(paths.home, { q: filter.q, limit, cursor: page.nextCursor }) : undefined, 'More repositories')}`;
  return layout({ title: 'Repositories', ctx, body });
}

export function repositoryPage(repository: string, page: Page<TagItem>, options: { cursor?: string; limit?: number }, ctx: ViewContext): Html {
  const base = paths.repository(repository);
  const body = html`<h1>${repository}</h1>
${ctx.registryHost ? html`<p class="muted">Pull with <code>${tagReference(repository, 'TAG', ctx)}</code></p>` : ''}
<h2 id="tags">Tags${options.cursor ? ' (older)' : ''}</h2>
${
  page.items.length === 0
    ? html`<p>No live tags${options.cursor ? ' on this page' : ''}.</p>`
    : html`<p class="muted">Newest first.</p>${tagTable(page.items, ctx, { caption: `Tags of ${repository}, newest first` })}`
}
${pager(options.cursor ? withQuery(base, { limit: options.limit }) : undefined, page.nextCursor ? withQuery(base, { limit: options.limit, cursor: page.nextCursor }) : undefined, 'Older tags')}`;
  return layout({ title: repository, ctx, crumbs: repositoryCrumbs(repository).slice(0, 1), body });
}
