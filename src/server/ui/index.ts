// The registry browser: server-rendered pages over the catalog Store, mounted on the server's
// hono app. Pages need no JavaScript; one small external script runs the copy buttons. Every
// response carries a Content-Security-Policy that allows only this origin's files (no inline
// script or style), and annotation values are escaped wherever they appear.
//
//   /                                   repositories, ?q= filters by name
//   /r/REPOSITORY                       its tags, newest first, ?cursor= pages
//   /r/REPOSITORY/-/tags/TAG            one tag: build details, annotations, raw manifest, history
//   /r/REPOSITORY/-/manifests/DIGEST    one manifest by digest (earlier digests, platform manifests)
//   /search?q=                          commit, pipeline, ref, key=value, repository or digest
//   /docs/annotate                      how to add build details
//   /insights?namespace=&weeks=         how images are built, by week (charts, tables, CSV link)
//   /assets/NAME.HASH.css|js            the style sheet and the copy script, cached for a year
//   any other GET outside /api/         an HTML 404 page
//
// Repository names hold slashes; no path component of one can be "-", so "/-/" separates the
// name from what follows, as in GitLab's own URLs.
import type { Context, Hono } from 'hono';
import { InvalidCursorError, httpStatusFor, isTagtrailError } from '../../errors.js';
import type { BuildEvidence, StoreReader } from '../../catalog/store.js';
import type { ImageDetail, TagHistory } from '../../catalog/types.js';
import type { Build } from '../../details/build.js';
import { isValidDigest, isValidRepository, isValidTag } from '../../oci/reference.js';
import { findAsset } from './assets.js';
import { type Html, type ViewContext, buildOfImage } from './html.js';
import { parseGitlabUrls } from './links.js';
import { docsPage, errorPage } from './pages/docs.js';
import { imagePage } from './pages/image.js';
import { WEEK_CHOICES, insightsPage } from './pages/insights.js';
import { repositoriesPage, repositoryPage } from './pages/repositories.js';
import { type SearchPageData, type SectionResult, searchPage } from './pages/search.js';
import { SEARCH_KINDS, type SearchKind, type SearchTerm, parseSearch } from './query.js';
import { DEFAULT_PAGE_SIZE, UI_MAX_PAGE_SIZE } from '../../catalog/paging.js';
import { parseChoice, parseCursor, parsePaging } from '../params.js';
import { readScopeOf, scoped, viewerOf } from '../auth/viewer.js';
import type { ReadScope } from '../../catalog/read-scope.js';

function viewerContext(c: Context): Pick<ViewContext, 'viewer'> {
  const v = viewerOf(c);
  return v ? { viewer: { username: v.username, ...(v.csrf !== undefined ? { csrf: v.csrf } : {}) } } : {};
}

interface UiOptions {
  store: StoreReader & Pick<BuildEvidence, 'verifiedInsights'>;
  /** The GitLab servers whose URLs may become links (see --gitlab-url); others stay text. */
  gitlabUrls: readonly string[];
  /** host[:port] of the registry, to show pullable references; without it, references are repository@digest. */
  registryHost?: string;
  now: () => Date;
  /** Called with errors that become a 500 page, for the server's log. */
  onError?: (err: unknown) => void;
}

export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/** Results per reading when the search shows several readings on one page. */
const SECTION_PAGE_SIZE = 10;

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

/** limit= and cursor= of a page, by the API's parser: a bad one is a 400 page naming it. */
function pagingOf(c: Context): { limit?: number; cursor?: string } {
  return parsePaging(new URL(c.req.url).searchParams, { max: UI_MAX_PAGE_SIZE });
}

/** Splits /r/… into the repository and what follows "/-/", each segment percent-decoded. */
export function parseRepositoryPath(pathname: string): { repository: string; rest: string[] } | undefined {
  if (!pathname.startsWith('/r/')) return undefined;
  const parts = pathname.slice(3).split('/');
  const decoded: string[] = [];
  for (const p of parts) {
    try {
      decoded.push(decodeURIComponent(p));
    } catch {
      return undefined;
    }
  }
  const dash = decoded.indexOf('-');
  const name = (dash < 0 ? decoded : decoded.slice(0, dash)).filter((p, i, all) => !(p === '' && i === all.length - 1));
  const repository = name.join('/');
  if (!isValidRepository(repository)) return undefined;
  return { repository, rest: dash < 0 ? [] : decoded.slice(dash + 1) };
}

export function mountUi(app: Hono, options: UiOptions): void {
  const { store } = options;
  const servers = parseGitlabUrls(options.gitlabUrls);
  const context = (c: Context, q?: string): ViewContext => ({
    servers,
    ...viewerContext(c),
    now: options.now(),
    ...(options.registryHost ? { registryHost: options.registryHost } : {}),
    ...(q !== undefined ? { q } : {}),
  });

  const send = async (c: Context, view: Html, status = 200): Promise<Response> => {
    const body = await view;
    return c.html(body, status as 200, { ...SECURITY_HEADERS, 'Cache-Control': 'no-cache' });
  };

  const notFound = (c: Context, message: string): Promise<Response> => send(c, errorPage(404, 'Not found', message, context(c)), 404);

  /** Wraps a page handler: catalog errors become an HTML page, not the API's JSON. */
  const page =
    (fn: (c: Context) => Promise<Response>) =>
    async (c: Context): Promise<Response> => {
      try {
        return await fn(c);
      } catch (err) {
        const status = isTagtrailError(err) ? httpStatusFor(err) : 500;
        if (isTagtrailError(err) && status < 500) {
          const stale = err instanceof InvalidCursorError;
          // A bad parameter's message names it (params.ts); its hint says what it takes.
          const message = stale ? 'This page link is out of date or broken. Start again from the first page.' : [err.message, err.hint].filter(Boolean).join('. ');
          return send(c, errorPage(status, stale ? 'Page link not valid' : 'Cannot show this page', message, context(c)), status);
        }
        options.onError?.(err);
        return send(c, errorPage(500, 'Something went wrong', 'The catalog could not be read. The server log has the details.', context(c)), 500);
      }
    };

  app.get('/assets/:file', (c) => {
    const asset = findAsset(c.req.path);
    if (!asset) return notFound(c, 'No such file.');
    const headers = { ...SECURITY_HEADERS, 'Content-Type': asset.contentType, 'Cache-Control': 'public, max-age=31536000, immutable', ETag: asset.etag };
    const match = c.req.header('if-none-match');
    if (match !== undefined && match.split(',').some((t) => t.trim() === asset.etag)) return new Response(null, { status: 304, headers });
    return new Response(asset.body, { status: 200, headers });
  });

  app.get(
    '/',
    page(async (c) => {
      const q = (c.req.query('q') ?? '').trim().slice(0, 512);
      const { cursor, limit } = pagingOf(c);
      const result = await store.listRepositories({ ...scoped(c), ...(q ? { q } : {}), ...(cursor ? { cursor } : {}), limit: limit ?? DEFAULT_PAGE_SIZE });
      return send(c, repositoriesPage(result, { q, ...(cursor ? { cursor } : {}), ...(limit ? { limit } : {}) }, context(c)));
    }),
  );

  app.get('/docs/annotate', page((c) => send(c, docsPage(context(c)))));

  app.get(
    '/insights',
    page(async (c) => {
      const namespace = (c.req.query('namespace') ?? '').trim().toLowerCase();
      const weeks = parseChoice(new URL(c.req.url).searchParams, 'weeks', WEEK_CHOICES, 26);
      const now = options.now();
      const from = new Date(now.getTime() - (weeks - 1) * 7 * 86_400_000);
      const report = await store.insights({ ...scoped(c), ...(namespace ? { namespace } : {}), from, to: now });
      const evidence = await store.verifiedInsights({ ...scoped(c), ...(namespace ? { namespace } : {}), from, to: now });
      return send(c, insightsPage({ report, weeks, evidence, ...(namespace ? { namespace } : {}) }, context(c)));
    }),
  );

  app.get('/r', (c) => c.redirect('/', 301));

  app.get(
    '/r/*',
    page(async (c) => {
      const parsed = parseRepositoryPath(new URL(c.req.url).pathname);
      if (!parsed) return notFound(c, 'That is not a repository name.');
      const { repository, rest } = parsed;
      if (rest.length === 0) {
        const { cursor, limit } = pagingOf(c);
        const result = await store.listTags(repository, { ...scoped(c), limit: limit ?? DEFAULT_PAGE_SIZE, ...(cursor ? { cursor } : {}) });
        if (result.items.length === 0 && !cursor) return notFound(c, `No repository “${repository}” with live tags in the catalog.`);
        return send(c, repositoryPage(repository, result, { ...(cursor ? { cursor } : {}), ...(limit ? { limit } : {}) }, context(c)));
      }
      const [what, id, ...extra] = rest;
      if (extra.length > 0 || id === undefined) return notFound(c, 'No such page.');
      if (what === 'tags') {
        if (!isValidTag(id)) return notFound(c, 'That is not a tag name.');
        const scope = scoped(c);
        const historyCursor = parseCursor(new URL(c.req.url).searchParams, 'history');
        const history = await store.tagHistory(repository, id, { ...scope, ...(historyCursor ? { cursor: historyCursor } : {}) });
        if (!history) return notFound(c, `No tag “${id}” in “${repository}” in the catalog.`);
        const [detail, earlier, insight] = await Promise.all([
          history.digest ? store.getImage(history.digest, { repository, ...scope }) : null,
          earlierBuilds(store, history, scope),
          history.digest ? store.manifestInsight(history.digest) : null,
        ]);
        const children = await childDetails(store, detail);
        return send(c, imagePage({ repository, tag: id, history, ...(historyCursor ? { historyCursor } : {}), detail, digest: history.digest, children, earlier, insight }, context(c)));
      }
      if (what === 'manifests') {
        if (!isValidDigest(id)) return notFound(c, 'That is not a digest.');
        // Its insight is read only once the person may see it.
        const detail = await store.getImage(id, { repository, ...scoped(c) });
        if (!detail) return notFound(c, `No manifest ${id} in the catalog.`);
        const insight = await store.manifestInsight(id);
        const children = await childDetails(store, detail);
        return send(c, imagePage({ repository, detail, digest: id, children, insight }, context(c)));
      }
      return notFound(c, 'No such page.');
    }),
  );

  app.get(
    '/search',
    page(async (c) => {
      const q = c.req.query('q') ?? '';
      const kindParam = c.req.query('kind');
      const only = SEARCH_KINDS.includes(kindParam as SearchKind) ? (kindParam as SearchKind) : undefined;
      const paging = pagingOf(c);
      const limit = paging.limit;
      const parsed = parseSearch(q, options.registryHost);
      if (!parsed.ok) {
        return send(c, searchPage({ q: parsed.text.slice(0, 512), error: parsed.error, terms: [], sections: [] }, context(c)), 400);
      }
      const terms = only ? parsed.terms.filter((t) => t.kind === only) : parsed.terms;
      const several = terms.length > 1;
      const cursor = several ? undefined : paging.cursor;
      const size = several ? SECTION_PAGE_SIZE : (limit ?? DEFAULT_PAGE_SIZE);
      const sections = await Promise.all(terms.map((t) => runTerm(store, t, size, cursor, readScopeOf(c))));
      const data: SearchPageData = {
        q: parsed.text,
        terms,
        sections,
        ...(only ? { only } : {}),
        ...(cursor ? { cursor } : {}),
        ...(limit ? { limit } : {}),
      };
      return send(c, searchPage(data, context(c, parsed.text)));
    }),
  );

  // Registered last: any other page a browser asks for gets an HTML 404; the API keeps its JSON one.
  app.get('*', (c) => (c.req.path.startsWith('/api/') ? c.notFound() : notFound(c, 'No such page.')));
}

async function runTerm(store: StoreReader, term: SearchTerm, limit: number, cursor: string | undefined, scope: ReadScope | undefined): Promise<SectionResult> {
  const page = { limit, ...(cursor ? { cursor } : {}), ...(scope ? { scope } : {}) };
  switch (term.kind) {
    case 'commit':
      return { term, kind: 'images', page: await store.searchImages({ commit: term.prefix, ...page }) };
    case 'pipeline':
      return { term, kind: 'images', page: await store.searchImages({ pipeline: term.id, ...page }) };
    case 'ref':
      return { term, kind: 'images', page: await store.searchImages({ ref: term.name, ...page }) };
    case 'annotation':
      return { term, kind: 'images', page: await store.searchImages({ annotations: [{ key: term.key, ...(term.value !== undefined ? { value: term.value } : {}) }], ...page }) };
    case 'repository':
      return { term, kind: 'repositories', page: await store.listRepositories({ q: term.name, ...page }) };
    case 'digest': {
      const detail = await store.getImage(term.digest, scope ? { scope } : {});
      return { term, kind: 'digest', digest: term.digest, tags: detail?.tags ?? [] };
    }
  }
}

/** How many earlier digests of a tag get their build details looked up. */
const EARLIER_BUILDS = 25;

/** The build details of a tag's earlier digests (the newest 25), for the history table: one read. */
async function earlierBuilds(store: StoreReader, history: TagHistory, scope: { scope?: ReadScope }): Promise<Map<string, Build | null>> {
  const digests = [...new Set(history.entries.map((e) => e.digest).filter((d) => d !== history.digest))].slice(0, EARLIER_BUILDS);
  const out = new Map<string, Build | null>();
  if (digests.length === 0) return out;
  for (const d of (await store.getImages(digests, { repository: history.repository, ...scope })).values()) out.set(d.digest, buildOfImage(d, d.labels) ?? null);
  return out;
}

/** The catalog's records of an index's children, for their raw JSON and config labels: one read. */
async function childDetails(store: StoreReader, detail: ImageDetail | null): Promise<Map<string, ImageDetail>> {
  const digests = detail?.children.filter((c) => c.annotations !== null).map((c) => c.digest) ?? [];
  return digests.length === 0 ? new Map() : store.getImages(digests);
}
