// Where the list of repositories to crawl comes from: the registry's /v2/_catalog, or GitLab's
// REST API (the registry repositories of named groups and projects). Everything after the list
// (resume, progress, checkpoints, the crawl lock, the reconcile) is the same for both.
import { InvalidInputError, UsageError, isTagtrailError } from '../errors.js';
import type { GitlabApi, GitlabProject, GitlabRegistryRepository } from '../gitlab/api.js';
import { isValidRepository, isValidRegistryHost } from '../oci/reference.js';
import type { RegistryClient } from '../oci/registry.js';

/** What GitLab said about the project a repository belongs to (absent fields: it did not say). */
export interface GitlabProjectInfo {
  id: number;
  path?: string;
  visibility?: string;
}

interface DiscoveredRepository {
  name: string;
  gitlab?: GitlabProjectInfo;
}

/** A repository the source listed but that cannot be crawled, and why. */
interface SkippedRepository {
  name: string;
  code: string;
  message: string;
}

export interface RepositorySource {
  /** 'catalog' keeps the fallback to one named repository when the catalog is not readable. */
  readonly kind: 'catalog' | 'gitlab';
  /** Part of the checkpoint key, so a run resumes only a run over the same list. */
  readonly id: string | undefined;
  /**
   * Every repository, in ascending name order, each once (a checkpoint records the last one
   * done), starting after `resumeAfter` where the source can skip ahead.
   */
  list(resumeAfter: string | undefined): AsyncIterable<DiscoveredRepository>;
  /** Whether a repository the source does not list any more is its to retire. */
  covers(repository: string): boolean;
  /** Repositories listed but left out, for the summary. */
  skipped(): readonly SkippedRepository[];
}

/** /v2/_catalog, all pages, as the registry orders it. */
export function catalogSource(client: RegistryClient, registry: string, pageSize = 100): RepositorySource {
  return {
    kind: 'catalog',
    id: undefined,
    async *list(resumeAfter) {
      for await (const name of client.listRepositories(registry, pageSize, resumeAfter)) yield { name };
    },
    covers: () => true,
    skipped: () => [],
  };
}

interface GitlabSourceOptions {
  api: GitlabApi;
  /** Full paths of groups (their subgroups' projects included, as GitLab lists them). */
  groups: readonly string[];
  /** Full paths of projects. */
  projects: readonly string[];
  /** The registry host[:port] to crawl; repositories GitLab locates elsewhere are skipped. */
  registry: string;
  /** Projects looked up at once for their path and visibility. Default 4. */
  concurrency?: number;
  /** Reads the listing (default listGitlabRepositories); lets a listing already read be used once. */
  listing?: () => Promise<GitlabRegistryRepository[]>;
}

/** Every registry repository of the groups, then of the projects, as GitLab lists them. */
export async function listGitlabRepositories(api: GitlabApi, groups: readonly string[], projects: readonly string[]): Promise<GitlabRegistryRepository[]> {
  const out: GitlabRegistryRepository[] = [];
  for (const g of groups) for await (const r of api.groupRegistryRepositories(g)) out.push(r);
  for (const p of projects) for await (const r of api.projectRegistryRepositories(p)) out.push(r);
  return out;
}

/** Splits a `location` (host[:port]/path) into its host and path. */
export function parseLocation(location: string): { host: string; path: string } | undefined {
  const slash = location.indexOf('/');
  if (slash <= 0) return undefined;
  const host = location.slice(0, slash).toLowerCase();
  const path = location.slice(slash + 1);
  return isValidRegistryHost(host) && isValidRepository(path) ? { host, path } : undefined;
}

/** A group or project path as given on the command line: no leading or trailing slash. */
export function normalizeGitlabPath(value: string, what: string): string {
  const p = value.trim().replace(/^\/+|\/+$/g, '');
  if (p === '' || !/^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/.test(p)) {
    throw new UsageError(`${what} ${JSON.stringify(value.slice(0, 200))} is not a GitLab full path`, { hint: `e.g. ${what} my-group/sub-group` });
  }
  return p;
}

/**
 * The registry a listing names, for a run without --registry: the host of the first
 * repository's `location`. Undefined when the groups and projects hold no repository.
 */
export function registryOfListing(listing: readonly GitlabRegistryRepository[]): string | undefined {
  for (const r of listing) {
    const loc = parseLocation(r.location);
    if (loc) return loc.host;
  }
  return undefined;
}

/**
 * The registry repositories of the named groups and projects, through GitLab's REST API, each
 * with its project's id, path and visibility. The group endpoint gives only `project_id`, so each
 * project is looked up once (GET /projects/:id); when that fails the id alone is recorded.
 */
export function gitlabSource(options: GitlabSourceOptions): RepositorySource {
  const { api, groups, projects, registry } = options;
  const registryHost = registry.toLowerCase();
  let skipped: SkippedRepository[] = [];
  // GitLab full paths keep their case (MyGroup/App); registry names and event paths are lower case.
  const covered = [...groups, ...projects].map((p) => p.toLowerCase());
  const covers = (repository: string): boolean => {
    const r = repository.toLowerCase();
    return covered.some((p) => r === p || r.startsWith(`${p}/`));
  };
  return {
    kind: 'gitlab',
    id: `gitlab:${api.origin}:${[...groups.map((g) => `g=${g}`), ...projects.map((p) => `p=${p}`)].join(',')}`,
    covers,
    skipped: () => skipped,
    async *list(resumeAfter) {
      skipped = [];
      const found = new Map<string, number>();
      const listing = await (options.listing ?? (() => listGitlabRepositories(api, groups, projects)))();
      for (const r of listing) {
        const loc = parseLocation(r.location);
        if (!loc || loc.path !== r.path) {
          skipped.push({ name: r.path.slice(0, 255), code: 'INVALID_REFERENCE', message: `GitLab lists a repository whose location ${JSON.stringify(r.location.slice(0, 300))} is not host/path` });
          continue;
        }
        if (loc.host !== registryHost) {
          skipped.push({ name: r.path, code: 'USAGE', message: `GitLab locates this repository on ${loc.host}, not on the registry being crawled (${registry})` });
          continue;
        }
        found.set(r.path, r.projectId);
      }

      const names = [...found.keys()].filter((n) => resumeAfter === undefined || n > resumeAfter).sort();
      const projectsById = await lookUpProjects(api, new Set(names.map((n) => found.get(n) as number)), options.concurrency ?? 4);
      for (const name of names) {
        const id = found.get(name) as number;
        const p = projectsById.get(id);
        yield { name, gitlab: { id, ...(p ? { path: p.pathWithNamespace } : {}), ...(p?.visibility ? { visibility: p.visibility } : {}) } };
      }
    },
  };
}

async function lookUpProjects(api: GitlabApi, ids: ReadonlySet<number>, concurrency: number): Promise<Map<number, GitlabProject>> {
  const out = new Map<number, GitlabProject>();
  const queue = [...ids];
  const worker = async (): Promise<void> => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      try {
        out.set(id, await api.project(id));
      } catch (err) {
        // The listing is what counts; a project that cannot be read is recorded by id only.
        if (!isTagtrailError(err) || err instanceof InvalidInputError) throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, queue.length)) }, worker));
  return out;
}
