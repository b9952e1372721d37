// The GitLab stand-in's world: users, access tokens with scopes, groups and projects with a
// visibility and members, and the container repositories of each project. Pure data and the
// access rules; the HTTP side is in rest.ts and server.ts.

/** https://docs.gitlab.com/user/public_access/ */
export type Visibility = 'public' | 'internal' | 'private';

/** Access levels as the API numbers them (https://docs.gitlab.com/api/members/#roles). */
export const ACCESS_LEVEL = { guest: 10, reporter: 20, developer: 30, maintainer: 40, owner: 50 } as const;
export type Role = keyof typeof ACCESS_LEVEL;

/**
 * Token scopes (https://docs.gitlab.com/user/profile/personal_access_tokens/#personal-access-token-scopes).
 * The stand-in checks api/read_api for the REST API and read_registry/write_registry for /jwt/auth.
 */
export type TokenScope = 'api' | 'read_api' | 'read_user' | 'read_registry' | 'write_registry' | 'read_repository' | 'write_repository';

export interface GitlabUser {
  username: string;
  id: number;
  /** Administrators see everything and alone may list the registry catalog. */
  admin: boolean;
  /** External users do not see internal projects (https://docs.gitlab.com/administration/external_users/). */
  external: boolean;
}

export interface AccessToken {
  token: string;
  username: string;
  scopes: TokenScope[];
  /** A revoked or expired token is refused everywhere. */
  active: boolean;
}

export interface GitlabGroup {
  id: number;
  /** Full path, e.g. acme/platform. */
  path: string;
  visibility: Visibility;
  members: Map<string, Role>;
}

export interface GitlabProject {
  id: number;
  /** Full path (path_with_namespace), e.g. acme/platform/api. */
  path: string;
  visibility: Visibility;
  members: Map<string, Role>;
  /**
   * container_registry_access_level (https://docs.gitlab.com/api/container_registry/#change-the-visibility-of-the-container-registry):
   * enabled follows the project's visibility, private needs Reporter, disabled turns it off.
   */
  registryAccess: 'enabled' | 'private' | 'disabled';
}

export interface RegistryRepository {
  id: number;
  projectId: number;
  /** The repository's full path in the registry: the project path, or below it. */
  path: string;
  createdAt: string;
}

export interface UserSpec {
  username: string;
  admin?: boolean;
  external?: boolean;
}

export interface TokenSpec {
  token: string;
  username: string;
  scopes: TokenScope[];
}

export interface GroupSpec {
  path: string;
  visibility?: Visibility;
  members?: Record<string, Role>;
}

export interface ProjectSpec {
  path: string;
  visibility?: Visibility;
  members?: Record<string, Role>;
  registryAccess?: GitlabProject['registryAccess'];
  /** Repository names relative to the project: '' is the project path itself, 'sub/image' below it. */
  repositories?: string[];
}

export class GitlabModel {
  readonly users = new Map<string, GitlabUser>();
  readonly tokens = new Map<string, AccessToken>();
  readonly groups = new Map<string, GitlabGroup>();
  readonly projects = new Map<string, GitlabProject>();
  readonly repositories = new Map<string, RegistryRepository>();
  private nextId = { user: 1, group: 1, project: 1, repository: 1 };

  addUser(spec: UserSpec): GitlabUser {
    const user = { username: spec.username, id: this.nextId.user++, admin: spec.admin === true, external: spec.external === true };
    this.users.set(spec.username, user);
    return user;
  }

  addToken(spec: TokenSpec): AccessToken {
    if (!this.users.has(spec.username)) this.addUser({ username: spec.username });
    const token = { token: spec.token, username: spec.username, scopes: [...spec.scopes], active: true };
    this.tokens.set(spec.token, token);
    return token;
  }

  revokeToken(token: string): void {
    const t = this.tokens.get(token);
    if (t) t.active = false;
  }

  /** Missing parent groups are made too, private and without members. */
  addGroup(spec: GroupSpec): GitlabGroup {
    const parent = parentPath(spec.path);
    if (parent !== undefined && !this.groups.has(parent)) this.addGroup({ path: parent });
    const group = { id: this.nextId.group++, path: spec.path, visibility: spec.visibility ?? 'private', members: new Map(Object.entries(spec.members ?? {})) };
    this.groups.set(spec.path, group);
    return group;
  }

  addProject(spec: ProjectSpec): GitlabProject {
    const namespace = parentPath(spec.path);
    if (namespace === undefined) throw new Error(`project ${spec.path} needs a group namespace`);
    if (!this.groups.has(namespace)) this.addGroup({ path: namespace });
    const project: GitlabProject = {
      id: this.nextId.project++,
      path: spec.path,
      visibility: spec.visibility ?? 'private',
      members: new Map(Object.entries(spec.members ?? {})),
      registryAccess: spec.registryAccess ?? 'enabled',
    };
    this.projects.set(spec.path, project);
    for (const name of spec.repositories ?? []) this.addRepository(spec.path, name);
    return project;
  }

  /** A container repository of the project ('' is the project path itself). */
  addRepository(projectPath: string, name: string): RegistryRepository {
    const project = this.projects.get(projectPath);
    if (!project) throw new Error(`no project ${projectPath}`);
    const path = name === '' ? projectPath : `${projectPath}/${name}`;
    const repo = { id: this.nextId.repository++, projectId: project.id, path, createdAt: new Date().toISOString() };
    this.repositories.set(path, repo);
    return repo;
  }

  removeRepository(path: string): void {
    this.repositories.delete(path);
  }

  projectById(id: number): GitlabProject | undefined {
    for (const p of this.projects.values()) if (p.id === id) return p;
    return undefined;
  }

  groupById(id: number): GitlabGroup | undefined {
    for (const g of this.groups.values()) if (g.id === id) return g;
    return undefined;
  }

  /** The project a registry path belongs to: the longest project path it equals or lies under. */
  projectOfRepository(path: string): GitlabProject | undefined {
    let best: GitlabProject | undefined;
    for (const p of this.projects.values()) {
      if ((path === p.path || path.startsWith(`${p.path}/`)) && (!best || p.path.length > best.path.length)) best = p;
    }
    return best;
  }

  /** An active token and its user, or undefined. */
  tokenUser(token: string | undefined): { user: GitlabUser; token: AccessToken } | undefined {
    if (token === undefined || token === '') return undefined;
    const t = this.tokens.get(token);
    const user = t?.active ? this.users.get(t.username) : undefined;
    return t && user ? { user, token: t } : undefined;
  }

  /** The highest role from the project's members and those of every group above it. */
  role(user: GitlabUser | undefined, path: string, ownMembers?: Map<string, Role>): number {
    if (!user) return 0;
    let level = ownMembers?.get(user.username) ? ACCESS_LEVEL[ownMembers.get(user.username) as Role] : 0;
    for (let g = parentPath(path); g !== undefined; g = parentPath(g)) {
      const r = this.groups.get(g)?.members.get(user.username);
      if (r) level = Math.max(level, ACCESS_LEVEL[r]);
    }
    return level;
  }

  /** https://docs.gitlab.com/user/public_access/#change-project-visibility */
  canSeeProject(user: GitlabUser | undefined, project: GitlabProject): boolean {
    if (user?.admin) return true;
    if (project.visibility === 'public') return true;
    if (project.visibility === 'internal' && user && !user.external) return true;
    return this.role(user, project.path, project.members) >= ACCESS_LEVEL.guest;
  }

  /**
   * Pull from the project's registry (https://docs.gitlab.com/user/packages/container_registry/#container-registry-visibility-permissions):
   * Reporter and up always; anyone who sees a public or internal project when the registry
   * follows the project's visibility.
   */
  canReadRegistry(user: GitlabUser | undefined, project: GitlabProject): boolean {
    if (project.registryAccess === 'disabled') return false;
    if (user?.admin) return true;
    if (this.role(user, project.path, project.members) >= ACCESS_LEVEL.reporter) return true;
    return project.registryAccess === 'enabled' && project.visibility !== 'private' && this.canSeeProject(user, project);
  }

  /** A group is visible by its visibility, or to members of it, of a group above or of anything below. */
  canSeeGroup(user: GitlabUser | undefined, group: GitlabGroup): boolean {
    if (user?.admin || group.visibility === 'public') return true;
    if (!user) return false;
    if (group.visibility === 'internal' && !user.external) return true;
    if (this.role(user, group.path, group.members) > 0) return true;
    const below = (path: string): boolean => path.startsWith(`${group.path}/`);
    for (const g of this.groups.values()) if (below(g.path) && g.members.has(user.username)) return true;
    for (const p of this.projects.values()) if (below(p.path) && p.members.has(user.username)) return true;
    return false;
  }

  /** The repositories of a project, in id order. */
  projectRepositories(project: GitlabProject): RegistryRepository[] {
    return [...this.repositories.values()].filter((r) => r.projectId === project.id).sort((a, b) => a.id - b.id);
  }

  /** The repositories of every project in the group and its subgroups the user may pull from. */
  groupRepositories(user: GitlabUser | undefined, group: GitlabGroup): RegistryRepository[] {
    const projects = [...this.projects.values()].filter((p) => p.path.startsWith(`${group.path}/`) && this.canReadRegistry(user, p));
    const ids = new Set(projects.map((p) => p.id));
    return [...this.repositories.values()].filter((r) => ids.has(r.projectId)).sort((a, b) => a.id - b.id);
  }
}

export function parentPath(path: string): string | undefined {
  const i = path.lastIndexOf('/');
  return i > 0 ? path.slice(0, i) : undefined;
}
