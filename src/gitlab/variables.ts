// A CI/CD variable reference left in a value, unexpanded. GitLab expands variables in
// .gitlab-ci.yml `variables:` when it creates the job, but not in a variable set in the project,
// group or instance settings unless "Expand variable reference" is checked (new variables leave it
// unchecked), and such a variable outranks the job's YAML. The job script then passes the text
// `$CI_REGISTRY_IMAGE:latest` itself. tagtrail does not expand it on GitLab's behalf: it cannot
// tell which variables GitLab would have resolved, and guessing could write to another image.
// https://docs.gitlab.com/ci/variables/#prevent-cicd-variable-expansion
import { UsageError } from '../errors.js';

const REFERENCE = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/;

/** The name of the first variable reference in s ($NAME or ${NAME}), if any. */
export function unexpandedVariable(s: string): string | undefined {
  const m = REFERENCE.exec(s);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** Exit 2 for an image reference that still holds a variable reference. */
export function assertExpanded(image: string): void {
  const name = unexpandedVariable(image);
  if (name === undefined) return;
  throw new UsageError(`the image ${JSON.stringify(image)} holds $${name}, a CI/CD variable reference that was never expanded`, {
    hint:
      `GitLab leaves a variable set in the project, group or instance CI/CD settings unexpanded unless "Expand variable reference" is checked; ` +
      `check it for the variable that holds this image (TAGTRAIL_IMAGES), or set it in .gitlab-ci.yml, or write the name out in full`,
  });
}
