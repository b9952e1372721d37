// A dotenv report read as GitLab reads one (Ci::ParseDotenvArtifactService and Ci::JobVariable):
// tests run every dotenv output of tagtrail through it. Written from GitLab's rules, not from
// tagtrail's writer, so the two can disagree and a test can catch it.
//
//   - the file is at most `maxBytes` (plan_limits.dotenv_size, 5120 by default);
//   - every line matches /^(.*?)=(.*)$/ (split at the first "="); an empty line does not;
//   - key and value are stripped of spaces;
//   - the key matches /\A[a-zA-Z0-9_]+\z/ and has at most 255 characters;
//   - a later line with the same key replaces the earlier one;
//   - more than `maxVariables` distinct keys: "Dotenv files cannot have more than N variables".

export interface GitLabDotenvLimits {
  readonly maxVariables: number;
  readonly maxBytes: number;
}

/** The defaults of a self-managed GitLab installed from scratch. */
export const GITLAB_DEFAULT_LIMITS: GitLabDotenvLimits = { maxVariables: 20, maxBytes: 5120 };

export class GitLabDotenvError extends Error {}

/** The variables GitLab would set, or a GitLabDotenvError with GitLab's own message. */
export function parseAsGitLab(text: string | Buffer, limits: GitLabDotenvLimits = GITLAB_DEFAULT_LIMITS): Map<string, string> {
  const buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  if (buf.byteLength > limits.maxBytes) throw new GitLabDotenvError(`Dotenv Artifact Too Big. Maximum Allowable Size: ${limits.maxBytes}`);
  const vars = new Map<string, string>();
  const body = buf.toString('utf8');
  if (body === '') return vars;
  // Ruby's each_line keeps the line break; the regex's $ matches before it.
  const lines = body.split(/(?<=\n)/);
  for (const raw of lines) {
    const line = raw.replace(/\n$/, '');
    const m = /^(.*?)=(.*)$/.exec(line);
    if (!m) throw new GitLabDotenvError('Invalid Format');
    const key = (m[1] as string).trim();
    const value = (m[2] as string).trim();
    if (!/^[a-zA-Z0-9_]+$/.test(key)) throw new GitLabDotenvError(`Key can contain only letters, digits and '_'.: ${JSON.stringify(key)}`);
    if (key.length > 255) throw new GitLabDotenvError('Key is too long (maximum is 255 characters)');
    vars.set(key, value);
  }
  if (vars.size > limits.maxVariables) throw new GitLabDotenvError(`Dotenv files cannot have more than ${limits.maxVariables} variables`);
  return vars;
}
