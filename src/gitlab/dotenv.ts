// The one writer of GitLab dotenv reports (artifacts:reports:dotenv). annotate, attach and flags
// hand it their variables, most useful first; it keeps what fits GitLab's limits and names the
// rest, so a report never makes GitLab fail the job.
//
// GitLab's parser (Ci::ParseDotenvArtifactService): the file may be at most `dotenv_size` bytes
// (5 KiB by default); each line is split at its first "=", key and value are stripped of spaces,
// a line without "=" (an empty line too) is an error; a key holds only ASCII letters, digits and
// "_" (at most 255 characters); a later line with the same key replaces the earlier one; more than
// `dotenv_variables` distinct keys fail the job with "Dotenv files cannot have more than N
// variables". That limit is 20 on a self-managed instance installed from scratch and on older
// GitLab.com plans (https://gitlab.com/gitlab-org/gitlab/-/issues/411139), so 20 is the default.
import { InvalidInputError, UsageError } from '../errors.js';
import type { Env } from './ci.js';

/** GitLab's default size limit for one dotenv report (plan_limits.dotenv_size). */
export const DOTENV_MAX_BYTES = 5 * 1024;
/** The smallest variable limit GitLab applies by default (plan_limits.dotenv_variables). */
export const DEFAULT_DOTENV_MAX_VARIABLES = 20;
export const DOTENV_MAX_VARIABLES_ENV = 'TAGTRAIL_DOTENV_MAX_VARIABLES';

const KEY = /^[A-Za-z0-9_]{1,255}$/;
const LINE_BREAK = /[\n\r]/;

export interface DotenvVariable {
  readonly name: string;
  readonly value: string;
}

export interface DotenvLimits {
  readonly maxVariables: number;
  readonly maxBytes: number;
}

/** The limits from TAGTRAIL_DOTENV_MAX_VARIABLES (default 20) and GitLab's 5 KiB. */
export function dotenvLimits(env: Env): DotenvLimits {
  const raw = env[DOTENV_MAX_VARIABLES_ENV];
  if (raw === undefined || raw.trim() === '') return { maxVariables: DEFAULT_DOTENV_MAX_VARIABLES, maxBytes: DOTENV_MAX_BYTES };
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1) {
    throw new UsageError(`${DOTENV_MAX_VARIABLES_ENV} is ${JSON.stringify(raw)}, not a whole number of at least 1`, {
      hint: `set it to your instance's dotenv variable limit (Admin area, plan limits: dotenv_variables), e.g. ${DOTENV_MAX_VARIABLES_ENV}=50`,
    });
  }
  return { maxVariables: Number(raw), maxBytes: DOTENV_MAX_BYTES };
}

export interface DotenvReport {
  readonly text: string;
  /** The names kept, in order. */
  readonly kept: readonly string[];
  /** The names left out to stay within the limits, in order. */
  readonly leftOut: readonly string[];
  /** Lines for standard error: what was left out and why, and what GitLab would alter. */
  readonly warnings: readonly string[];
}

/**
 * The report for these variables, given most useful first. A variable that would break the count
 * or the size limit is left out, and the ones after it are still tried (a shorter one may fit).
 * A name that is not a GitLab variable name, a value with a line break, or a name given twice is a
 * bug of the caller or bad input: refused, as GitLab would refuse the whole report.
 */
export function writeDotenv(vars: readonly DotenvVariable[], limits: DotenvLimits): DotenvReport {
  const seen = new Set<string>();
  const lines: string[] = [];
  const kept: string[] = [];
  const leftOut: string[] = [];
  const warnings: string[] = [];
  let bytes = 0;
  for (const { name, value } of vars) {
    if (!KEY.test(name)) throw new InvalidInputError('INVALID_ANNOTATION', `${JSON.stringify(name)} is not a GitLab dotenv variable name`, { hint: 'names hold only ASCII letters, digits and _' });
    if (seen.has(name)) throw new InvalidInputError('INVALID_ANNOTATION', `the dotenv report names ${name} twice`, { hint: 'leave one of them out' });
    seen.add(name);
    if (LINE_BREAK.test(value)) throw new InvalidInputError('INVALID_ANNOTATION', `the value of ${name} has a line break, which a GitLab dotenv report cannot hold`, { hint: 'leave it out' });
    const line = `${name}=${value}\n`;
    const size = Buffer.byteLength(line, 'utf8');
    if (kept.length >= limits.maxVariables || bytes + size > limits.maxBytes) {
      leftOut.push(name);
      continue;
    }
    if (value !== value.trim()) warnings.push(`warning: GitLab strips the spaces around the value of ${name}`);
    lines.push(line);
    kept.push(name);
    bytes += size;
  }
  if (leftOut.length > 0) {
    warnings.push(
      `warning: the dotenv report holds ${kept.length} of ${vars.length} variables, to stay within ${limits.maxVariables} variables and ${limits.maxBytes} bytes (GitLab fails the job otherwise); left out: ${leftOut.join(', ')}` +
        ` (raise ${DOTENV_MAX_VARIABLES_ENV} if your instance allows more)`,
    );
  }
  return { text: lines.join(''), kept, leftOut, warnings };
}
