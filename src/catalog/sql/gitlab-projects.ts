// The SQL of each repository's GitLab project (columns from migration 5), shared by both dialects
// and called from SqlStore: written by a crawl whose list came from GitLab's API (discovery.ts).
import type { Queryable } from './driver.js';

export interface GitlabProjectColumns {
  id: number;
  path?: string;
  visibility?: string;
}

/** Updates a repository the catalog already holds; what GitLab did not say is stored as null. */
export async function setGitlabProject(q: Queryable, repository: string, project: GitlabProjectColumns): Promise<void> {
  await q.run('UPDATE repositories SET gitlab_project_id = ?, gitlab_project_path = ?, gitlab_visibility = ? WHERE name = ?', [
    project.id,
    project.path?.slice(0, 1000) ?? null,
    project.visibility?.slice(0, 32) ?? null,
    repository,
  ]);
}
