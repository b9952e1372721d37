// Which repositories a signed-in person may read (the rule is in docs/access.md): those whose
// GitLab project they are a member of with at least Reporter, and, when GitLab discovery records
// each repository's project, those whose project is public or internal. Undefined: everything
// (serve --auth none).
export interface ReadScope {
  /** Full paths of the projects the person is a member of with at least Reporter. */
  readonly projects: readonly string[];
  /** Repositories whose recorded GitLab project is public or internal count too. */
  readonly publicAndInternal: boolean;
}

/**
 * A repository belongs to the longest project path that is a prefix of its own (segment by
 * segment). GitLab projects never nest (a project lives in a group, not in a project), so any
 * member project that is such a prefix is that project.
 */
export function canRead(scope: ReadScope | undefined, repository: string, recorded?: { path: string | null; visibility: string | null }): boolean {
  if (scope === undefined) return true;
  if (recorded?.path) {
    if (scope.publicAndInternal && (recorded.visibility === 'public' || recorded.visibility === 'internal')) return true;
    return scope.projects.includes(recorded.path);
  }
  return scope.projects.some((p) => repository === p || repository.startsWith(`${p}/`));
}
