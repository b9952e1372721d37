// Which repositories a signed-in person may read (the rule is in docs/access.md): those whose
// GitLab project they are a member of with at least Reporter, and, when GitLab discovery records
// each repository's project, those whose project is public or internal. Undefined: everything
// (serve --auth none). The rule runs as SQL in sql/read-scope-sql.ts: a repository belongs to its
// recorded GitLab project, or else to the longest member project path that is a prefix of its own
// (segment by segment; GitLab projects never nest).
export interface ReadScope {
  /** Full paths of the projects the person is a member of with at least Reporter. */
  readonly projects: readonly string[];
  /** Repositories whose recorded GitLab project is public or internal count too. */
  readonly publicAndInternal: boolean;
}
