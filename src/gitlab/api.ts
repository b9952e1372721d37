// GitLab's REST API (v4), the little tagtrail reads of it: registry repositories of groups and
// projects, and a project's path and visibility. The token goes in PRIVATE-TOKEN and only ever to
// the GitLab server's own origin: pagination links and redirects elsewhere are refused.
// https://docs.gitlab.com/api/rest/authentication/#personalprojectgroup-access-tokens
import { readBounded } from '../bounded-body.js';
import { AuthError, NetworkError, NotFoundError, RegistryError, UsageError } from '../errors.js';
import { isLoopbackHost } from '../oci/reference.js';
import { DEFAULT_RETRY, parseRetryAfter } from '../oci/transport.js';

/** GitLab caps per_page at 100 (https://docs.gitlab.com/api/rest/#offset-based-pagination). */
const GITLAB_PER_PAGE = 100;
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_PAGES = 100_000;
const MAX_REDIRECTS = 5;

/**
 * The one rule for where tagtrail talks to GitLab (its API, and ID-token issuers): https, or
 * plain http on a loopback host, as registries on loopback already are. Returns the URL with any
 * trailing slash removed from its path (a server installed under a relative URL keeps its path).
 */
export function checkGitlabUrl(value: string, what = '--gitlab-url'): URL {
  let u: URL;
  try {
    u = new URL(value.trim());
  } catch {
    throw new UsageError(`${what} ${JSON.stringify(value.slice(0, 200))} is not an absolute URL`, { hint: 'e.g. --gitlab-url https://gitlab.example.com' });
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.host))) {
    throw new UsageError(`${what} ${JSON.stringify(u.origin)}: only https is accepted (plain http only on a loopback host)`, {
      hint: 'use the server\'s https:// URL; the token must not cross the network in clear text',
    });
  }
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
    throw new UsageError(`${what}: give the server's base URL without credentials, query or fragment`, { hint: 'the token comes from TAGTRAIL_GITLAB_TOKEN' });
  }
  u.pathname = u.pathname.replace(/\/+$/, '');
  return u;
}

/** One entry of GET /groups/:id/registry/repositories or /projects/:id/registry/repositories. */
export interface GitlabRegistryRepository {
  id: number;
  /** The repository's path in the registry, e.g. group/project/sub/image. */
  path: string;
  projectId: number;
  /** host[:port]/path: where the registry serves it. */
  location: string;
}

/** GET /projects/:id (https://docs.gitlab.com/api/projects/#get-a-single-project). */
export interface GitlabProject {
  id: number;
  pathWithNamespace: string;
  /** public, internal or private; absent when GitLab did not say. */
  visibility?: string;
}

interface GitlabApiOptions {
  /** The server's base URL, checked with checkGitlabUrl. */
  url: URL;
  token: string;
  fetch: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Attempts per request, the first included (default as for registries). */
  maxAttempts?: number;
  /** A Retry-After longer than this is cut down to it (default as for registries). */
  maxRetryAfterMs?: number;
  userAgent?: string;
  debug?: (line: string) => void;
  /**
   * How the token is sent: PRIVATE-TOKEN (personal, project and group access tokens), or
   * Authorization: Bearer, which OAuth access tokens need and the others accept too
   * (https://docs.gitlab.com/api/rest/authentication/). Default PRIVATE-TOKEN.
   */
  tokenHeader?: 'private-token' | 'bearer';
}

/** GET /user (https://docs.gitlab.com/api/users/#get-the-current-user). */
interface GitlabCurrentUser {
  id: number;
  username: string;
}

/** Reads `:id` the way the API wants a namespaced path: URL-encoded, slashes included. */
function encodeGitlabPath(fullPath: string): string {
  return encodeURIComponent(fullPath);
}

/** The URL of rel="next" in a Link header (RFC 8288), if any. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?/i.test(m[2] ?? '')) return m[1];
  }
  return undefined;
}

export class GitlabApi {
  private readonly base: URL;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly maxAttempts: number;
  private readonly maxRetryAfterMs: number;

  constructor(private readonly opts: GitlabApiOptions) {
    this.base = opts.url;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.now = opts.now ?? Date.now;
    this.maxAttempts = opts.maxAttempts ?? DEFAULT_RETRY.maxAttempts;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? DEFAULT_RETRY.maxRetryAfterMs;
  }

  get origin(): string {
    return this.base.origin;
  }

  /** https://docs.gitlab.com/api/container_registry/#within-a-group */
  groupRegistryRepositories(groupPath: string): AsyncGenerator<GitlabRegistryRepository> {
    return this.repositories(`/groups/${encodeGitlabPath(groupPath)}/registry/repositories`, `group ${groupPath}`);
  }

  /** https://docs.gitlab.com/api/container_registry/#within-a-project */
  projectRegistryRepositories(projectPath: string): AsyncGenerator<GitlabRegistryRepository> {
    return this.repositories(`/projects/${encodeGitlabPath(projectPath)}/registry/repositories`, `project ${projectPath}`);
  }

  /** https://docs.gitlab.com/api/projects/#get-a-single-project */
  async project(id: number | string): Promise<GitlabProject> {
    const what = `project ${id}`;
    const { body } = await this.get(this.apiUrl(`/projects/${typeof id === 'number' ? id : encodeGitlabPath(id)}`), what);
    const p = body as { id?: unknown; path_with_namespace?: unknown; visibility?: unknown };
    if (typeof p?.id !== 'number' || typeof p.path_with_namespace !== 'string') throw new RegistryError(`GitLab answered for ${what} without an id and path`, 200);
    return { id: p.id, pathWithNamespace: p.path_with_namespace, ...(typeof p.visibility === 'string' ? { visibility: p.visibility } : {}) };
  }

  /** https://docs.gitlab.com/api/users/#get-the-current-user: whose the token is. */
  async currentUser(): Promise<GitlabCurrentUser> {
    const { body } = await this.get(this.apiUrl('/user'), 'the current user');
    const u = body as { id?: unknown; username?: unknown };
    if (typeof u?.id !== 'number' || typeof u.username !== 'string') throw new RegistryError('GitLab answered for the current user without an id and username', 200);
    return { id: u.id, username: u.username };
  }

  /**
   * The full paths of the projects the token's user is a member of with at least this access
   * level (20: Reporter), every page: https://docs.gitlab.com/api/projects/#list-all-projects
   * (`min_access_level`, `simple=true` for the short form, offset pagination).
   */
  async memberProjectPaths(minAccessLevel: number): Promise<string[]> {
    const out: string[] = [];
    const query = `?min_access_level=${minAccessLevel}&simple=true`;
    for await (const item of this.paginate(`/projects${query}`, 'the projects of the user')) {
      const p = item as { path_with_namespace?: unknown };
      if (typeof p?.path_with_namespace !== 'string') throw new RegistryError('GitLab listed a project without path_with_namespace', 200);
      out.push(p.path_with_namespace);
    }
    return out;
  }

  private async *repositories(path: string, what: string): AsyncGenerator<GitlabRegistryRepository> {
    for await (const item of this.paginate(path, what)) {
      const r = item as { id?: unknown; path?: unknown; project_id?: unknown; location?: unknown };
      if (typeof r?.path !== 'string' || typeof r.project_id !== 'number' || typeof r.location !== 'string' || typeof r.id !== 'number') {
        throw new RegistryError(`GitLab listed a registry repository of ${what} without path, project_id or location`, 200);
      }
      yield { id: r.id, path: r.path, projectId: r.project_id, location: r.location };
    }
  }

  private apiUrl(path: string): URL {
    return new URL(`${this.base.href.replace(/\/+$/, '')}/api/v4${path}`);
  }

  /**
   * Every item of every page. per_page=100, then rel="next" of the Link header, else X-Next-Page
   * (https://docs.gitlab.com/api/rest/#pagination-link-header,
   * https://docs.gitlab.com/api/rest/#other-pagination-headers). Keyset pagination also answers
   * with a Link header only, so both kinds are followed alike.
   */
  private async *paginate(path: string, what: string): AsyncGenerator<unknown> {
    let url: URL | undefined = this.apiUrl(path);
    url.searchParams.set('per_page', String(GITLAB_PER_PAGE));
    const seen = new Set<string>();
    for (let page = 0; url !== undefined; page++) {
      if (page >= MAX_PAGES || seen.has(url.href)) throw new RegistryError(`GitLab's pagination of ${what} does not end`, 200);
      seen.add(url.href);
      const { body, headers } = await this.get(url, what);
      if (!Array.isArray(body)) throw new RegistryError(`GitLab answered for ${what} with something other than a list`, 200);
      yield* body;
      url = this.nextPage(url, headers, what);
    }
  }

  private nextPage(current: URL, headers: Headers, what: string): URL | undefined {
    const link = nextLink(headers.get('link'));
    if (link !== undefined) {
      let next: URL;
      try {
        next = new URL(link, current);
      } catch {
        throw new RegistryError(`GitLab's next-page link for ${what} is not a URL`, 200);
      }
      // The token goes with the next request: never to another origin.
      if (next.origin !== this.base.origin) throw new RegistryError(`GitLab's next-page link for ${what} points at another server (${next.host}); tagtrail will not send the token there`, 200);
      return next;
    }
    const xNext = headers.get('x-next-page')?.trim();
    if (xNext && /^\d+$/.test(xNext)) {
      const next = new URL(current);
      next.searchParams.set('page', xNext);
      return next;
    }
    return undefined;
  }

  private log(line: string): void {
    this.opts.debug?.(line);
  }

  /** One GET with the token: same-origin redirects, 429 and 5xx waited out, errors mapped. */
  private async get(start: URL, what: string): Promise<{ body: unknown; headers: Headers }> {
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      let url = start;
      try {
        for (let hop = 0; ; hop++) {
          res = await this.opts.fetch(url, {
            headers: { ...(this.opts.tokenHeader === 'bearer' ? { authorization: `Bearer ${this.opts.token}` } : { 'private-token': this.opts.token }), accept: 'application/json', ...(this.opts.userAgent ? { 'user-agent': this.opts.userAgent } : {}) },
            redirect: 'manual',
          });
          const location = res.status >= 300 && res.status < 400 ? res.headers.get('location') : null;
          if (location === null) break;
          await res.body?.cancel().catch(() => undefined);
          const next = new URL(location, url);
          if (next.origin !== this.base.origin || hop >= MAX_REDIRECTS) throw new RegistryError(`GitLab redirected ${what} to ${next.host}; tagtrail sends the token only to ${this.base.host}`, res.status);
          url = next;
        }
      } catch (err) {
        if (err instanceof RegistryError) throw err;
        if (attempt >= this.maxAttempts) throw new NetworkError(`GitLab at ${this.base.host} could not be reached for ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        await this.sleep(Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.baseDelayMs * 2 ** (attempt - 1)));
        continue;
      }
      this.log(`GET ${url.pathname}${url.search} -> ${res.status}`);
      if (res.status === 429 || res.status === 502 || res.status === 503 || res.status === 504) {
        await res.body?.cancel().catch(() => undefined);
        if (attempt >= this.maxAttempts) throw new RegistryError(`GitLab answered ${what} with HTTP ${res.status} ${attempt} times`, res.status, [], res.status === 429 ? { hint: 'the API rate limit is reached; try again later' } : {});
        // Rate limits answer 429 with Retry-After (https://docs.gitlab.com/security/rate_limits/);
        // it is honoured up to the cap, as the registry transport does.
        const retryAfter = parseRetryAfter(res.headers.get('retry-after'), this.now());
        const backoff = Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.baseDelayMs * 2 ** (attempt - 1));
        const wait = Math.min(this.maxRetryAfterMs, retryAfter ?? backoff);
        this.log(`GitLab answered ${res.status}; retrying in ${wait} ms`);
        await this.sleep(wait);
        continue;
      }
      const bytes = await readBounded(res.body, res.headers.get('content-length'), MAX_BODY_BYTES, () => new RegistryError(`GitLab's answer for ${what} is over ${MAX_BODY_BYTES} bytes`, res.status));
      const text = Buffer.from(bytes).toString('utf8');
      if (res.status === 200) {
        try {
          return { body: JSON.parse(text) as unknown, headers: res.headers };
        } catch {
          throw new RegistryError(`GitLab answered ${what} with something other than JSON`, res.status);
        }
      }
      throw this.statusError(res.status, text, what);
    }
  }

  private statusError(status: number, text: string, what: string): Error {
    let message = '';
    try {
      const j = JSON.parse(text) as { message?: unknown; error?: unknown };
      const m = typeof j.message === 'string' ? j.message : typeof j.error === 'string' ? j.error : '';
      message = m.slice(0, 200);
    } catch {
      // not JSON: leave the body out
    }
    const detail = message ? ` (${message})` : '';
    switch (status) {
      case 401:
        return new AuthError('UNAUTHORIZED', `GitLab at ${this.base.host} refused the token from TAGTRAIL_GITLAB_TOKEN for ${what}${detail}`, {
          hint: 'check that the token is valid and not expired; it needs the read_api and read_registry scopes',
        });
      case 403:
        return new AuthError('DENIED', `GitLab at ${this.base.host} denied ${what}${detail}`, { hint: 'the token needs the read_api scope (and read_registry to pull)' });
      case 404:
        // GitLab answers 404, not 403, for a group or project the token may not see.
        return new NotFoundError(`GitLab at ${this.base.host} knows no ${what}, or the token may not see it${detail}`, {
          hint: 'check the full path (group/subgroup/project) and that the token\'s user is a member or the project is visible to it',
        });
      default:
        return new RegistryError(`GitLab answered ${what} with HTTP ${status}${detail}`, status);
    }
  }
}
