// The REST API (v4) routes of the GitLab stand-in: what tagtrail's discovery reads. Each answer
// follows GitLab's documentation, cited next to it.
import type { GitlabModel, GitlabProject, GitlabUser, RegistryRepository, TokenScope } from './model.js';
import { paginate } from './pagination.js';
import type { Reply, Router } from './router.js';

export interface RestOptions {
  model: GitlabModel;
  /** host[:port] of the registry, for each repository's `location`. */
  registryHost(): string;
  /** The largest per_page served (a test knob; GitLab's is 100). */
  maxPerPage(): number;
}

/** Scopes that grant reading the REST API (https://docs.gitlab.com/user/profile/personal_access_tokens/#personal-access-token-scopes). */
const API_READ_SCOPES: readonly TokenScope[] = ['api', 'read_api'];

/** GitLab's error bodies: {"message": "404 Project Not Found"} and the like. */
function message(status: number, text: string): Reply {
  return { status, body: { message: text } };
}

/**
 * The caller: PRIVATE-TOKEN or Authorization: Bearer (https://docs.gitlab.com/api/rest/authentication/).
 * No token: anonymous, public resources only. An unknown, revoked or expired token: 401
 * {"message":"401 Unauthorized"}. A token without api or read_api: 403 insufficient_scope.
 */
function caller(model: GitlabModel, headers: Record<string, string | string[] | undefined>): { user: GitlabUser | undefined } | Reply {
  const privateToken = headers['private-token'];
  const authz = headers.authorization;
  const bearer = typeof authz === 'string' && /^bearer /i.test(authz) ? authz.slice(7).trim() : undefined;
  const token = typeof privateToken === 'string' ? privateToken : bearer;
  if (token === undefined) return { user: undefined };
  const found = model.tokenUser(token);
  if (!found) return message(401, '401 Unauthorized');
  if (!found.token.scopes.some((s) => API_READ_SCOPES.includes(s))) {
    return {
      status: 403,
      body: { error: 'insufficient_scope', error_description: 'The request requires higher privileges than provided by the access token.', scope: 'api read_api' },
    };
  }
  return { user: found.user };
}

function isReply(x: unknown): x is Reply {
  return typeof x === 'object' && x !== null && 'status' in x;
}

/** `:id` is a numeric id or the URL-encoded full path (https://docs.gitlab.com/api/rest/#namespaced-paths). */
function byId<T extends { id: number; path: string }>(raw: string, byPath: Map<string, T>, byNumber: (id: number) => T | undefined): T | undefined {
  if (/^\d+$/.test(raw)) return byNumber(Number(raw));
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  return byPath.get(path);
}

/** One entry as https://docs.gitlab.com/api/container_registry/#list-registry-repositories shows it. */
function repositoryJson(model: GitlabModel, r: RegistryRepository, registryHost: string): Record<string, unknown> {
  const project = model.projectById(r.projectId) as GitlabProject;
  return {
    id: r.id,
    name: r.path === project.path ? '' : r.path.slice(project.path.length + 1),
    path: r.path,
    project_id: r.projectId,
    location: `${registryHost}/${r.path}`,
    created_at: r.createdAt,
    cleanup_policy_started_at: null,
    status: null,
  };
}

export function registerRestRoutes(router: Router, options: RestOptions): void {
  const { model } = options;

  // https://docs.gitlab.com/api/container_registry/#within-a-group: the repositories of the
  // group's projects, subgroups included, that the caller may read. A group the caller cannot
  // see answers 404 {"message":"404 Group Not Found"}.
  router.get(/^\/api\/v4\/groups\/([^/]+)\/registry\/repositories$/, ({ match, url, req }) => {
    const who = caller(model, req.headers);
    if (isReply(who)) return who;
    const group = byId(match[1] as string, model.groups, (id) => model.groupById(id));
    if (!group || !model.canSeeGroup(who.user, group)) return message(404, '404 Group Not Found');
    const page = paginate(model.groupRepositories(who.user, group), url, options.maxPerPage());
    return { status: 200, headers: page.headers, body: page.items.map((r) => repositoryJson(model, r, options.registryHost())) };
  });

  // https://docs.gitlab.com/api/container_registry/#within-a-project: a project the caller
  // cannot see answers 404 {"message":"404 Project Not Found"}, as everywhere in the API
  // (https://docs.gitlab.com/api/rest/troubleshooting/#status-codes); one it sees but whose
  // registry it may not read, 403.
  router.get(/^\/api\/v4\/projects\/([^/]+)\/registry\/repositories$/, ({ match, url, req }) => {
    const who = caller(model, req.headers);
    if (isReply(who)) return who;
    const project = byId(match[1] as string, model.projects, (id) => model.projectById(id));
    if (!project || !model.canSeeProject(who.user, project)) return message(404, '404 Project Not Found');
    if (!model.canReadRegistry(who.user, project)) return message(403, '403 Forbidden');
    const page = paginate(model.projectRepositories(project), url, options.maxPerPage());
    return { status: 200, headers: page.headers, body: page.items.map((r) => repositoryJson(model, r, options.registryHost())) };
  });

  // https://docs.gitlab.com/api/projects/#get-a-single-project (the fields discovery reads).
  router.get(/^\/api\/v4\/projects\/([^/]+)$/, ({ match, req }) => {
    const who = caller(model, req.headers);
    if (isReply(who)) return who;
    const project = byId(match[1] as string, model.projects, (id) => model.projectById(id));
    if (!project || !model.canSeeProject(who.user, project)) return message(404, '404 Project Not Found');
    const name = project.path.slice(project.path.lastIndexOf('/') + 1);
    const namespace = project.path.slice(0, project.path.lastIndexOf('/'));
    return {
      status: 200,
      body: {
        id: project.id,
        name,
        path: name,
        path_with_namespace: project.path,
        namespace: { full_path: namespace },
        visibility: project.visibility,
        container_registry_access_level: project.registryAccess,
        container_registry_image_prefix: `${options.registryHost()}/${project.path}`,
      },
    };
  });

  // https://docs.gitlab.com/api/projects/#list-all-projects: the projects the caller can see;
  // `min_access_level` keeps those where the caller's role, direct or through a group, is at
  // least that (https://docs.gitlab.com/api/members/#roles), `simple=true` the short form. Offset
  // pagination (pagination.ts), in id order.
  router.get(/^\/api\/v4\/projects$/, ({ url, req }) => {
    const who = caller(model, req.headers);
    if (isReply(who)) return who;
    const minRaw = url.searchParams.get('min_access_level');
    const min = minRaw !== null && /^\d+$/.test(minRaw) ? Number(minRaw) : undefined;
    if (minRaw !== null && min === undefined) return { status: 400, body: { error: 'min_access_level does not have a valid value' } };
    const visible = [...model.projects.values()]
      .filter((p) => model.canSeeProject(who.user, p) && (min === undefined || model.role(who.user, p.path, p.members) >= min))
      .sort((a, b) => a.id - b.id);
    const page = paginate(visible, url, options.maxPerPage());
    return {
      status: 200,
      headers: page.headers,
      body: page.items.map((p) => {
        const name = p.path.slice(p.path.lastIndexOf('/') + 1);
        return { id: p.id, name, path: name, path_with_namespace: p.path, name_with_namespace: p.path.split('/').join(' / '), visibility: p.visibility };
      }),
    };
  });

  // https://docs.gitlab.com/api/users/#get-the-current-user
  router.get(/^\/api\/v4\/user$/, ({ req }) => {
    const who = caller(model, req.headers);
    if (isReply(who)) return who;
    if (!who.user) return message(401, '401 Unauthorized');
    return { status: 200, body: { id: who.user.id, username: who.user.username, is_admin: who.user.admin } };
  });
}
