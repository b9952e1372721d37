// --gitlab-group and --gitlab-project (sync and serve): the repositories to crawl come from
// GitLab's REST API on the first --gitlab-url server instead of the registry's /v2/_catalog, and
// the same token (TAGTRAIL_GITLAB_TOKEN) is the default registry credential for GitLab's /jwt/auth.
import { UsageError } from '../errors.js';
import { type RepositorySource, gitlabSource, listGitlabRepositories, normalizeGitlabPath, registryOfListing } from '../catalog/discovery.js';
import { GitlabApi, type GitlabRegistryRepository, checkGitlabUrl } from '../gitlab/api.js';
import type { CredentialResolver } from '../oci/auth/credentials.js';
import { normalizeAuthKey } from '../oci/auth/credentials.js';
import type { Runtime } from '../runtime.js';
import { gitlabUrlsFrom } from '../server/ui/links.js';
import { VERSION } from '../version.js';

export interface GitlabDiscoveryFlags {
  gitlabGroup?: string[];
  gitlabProject?: string[];
  gitlabUrl?: string[];
  debug?: boolean;
}

export interface GitlabDiscovery {
  api: GitlabApi;
  groups: string[];
  projects: string[];
  /** The repository source for this registry. */
  source(registry: string): RepositorySource;
  /** The registry the listing names (for a run without --registry). */
  discoverRegistry(): Promise<string | undefined>;
  /** The token as the registry credential, for this registry only, to a realm on GitLab or the registry. */
  credentials(registry: string): CredentialResolver;
}

/** GitLab's /jwt/auth does not check the user name of an access token; any non-empty one works. */
const TOKEN_USER = 'tagtrail';

/** The repeatable flag, else the comma-separated variable. */
function paths(flag: readonly string[] | undefined, env: string | undefined, what: string): string[] {
  const values = flag && flag.length > 0 ? [...flag] : env !== undefined && env.trim() !== '' ? env.split(',') : [];
  const out: string[] = [];
  for (const v of values) {
    if (v.trim() === '') continue;
    const p = normalizeGitlabPath(v, what);
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** Undefined unless --gitlab-group or --gitlab-project (or their variables) name something. */
export function gitlabDiscoveryFrom(rt: Runtime, flags: GitlabDiscoveryFlags): GitlabDiscovery | undefined {
  const groups = paths(flags.gitlabGroup, rt.env.TAGTRAIL_GITLAB_GROUPS, '--gitlab-group');
  const projects = paths(flags.gitlabProject, rt.env.TAGTRAIL_GITLAB_PROJECTS, '--gitlab-project');
  if (groups.length === 0 && projects.length === 0) return undefined;
  const first = gitlabUrlsFrom(flags.gitlabUrl, rt.env.TAGTRAIL_GITLAB_URL).flatMap((u) => u.split(',')).map((u) => u.trim()).find((u) => u !== '') as string;
  const url = checkGitlabUrl(first);
  const token = rt.env.TAGTRAIL_GITLAB_TOKEN;
  if (token === undefined || token === '') {
    throw new UsageError('--gitlab-group and --gitlab-project need an access token in TAGTRAIL_GITLAB_TOKEN', {
      hint: 'create a personal, project or group access token with the read_api and read_registry scopes and export TAGTRAIL_GITLAB_TOKEN',
    });
  }
  const api = new GitlabApi({
    url,
    token,
    fetch: rt.fetch,
    now: () => rt.now().getTime(),
    userAgent: `tagtrail/${VERSION}`,
    ...(flags.debug ? { debug: (line: string) => rt.stderr.write(`debug: ${line}\n`) } : {}),
  });
  // The listing read to find the registry serves the first crawl too, rather than being read twice.
  let prefetched: GitlabRegistryRepository[] | undefined;
  const listing = async (): Promise<GitlabRegistryRepository[]> => {
    const list = prefetched ?? (await listGitlabRepositories(api, groups, projects));
    prefetched = undefined;
    return list;
  };
  return {
    api,
    groups,
    projects,
    source: (registry) => gitlabSource({ api, groups, projects, registry, listing }),
    discoverRegistry: async () => {
      prefetched = await listGitlabRepositories(api, groups, projects);
      return registryOfListing(prefetched);
    },
    credentials: (registry) => {
      const key = normalizeAuthKey(registry);
      const credential = { username: TOKEN_USER, password: token, source: 'TAGTRAIL_GITLAB_TOKEN', realmHosts: [url.host.toLowerCase(), key] };
      return (asked) => (normalizeAuthKey(asked) === key ? credential : undefined);
    },
  };
}
