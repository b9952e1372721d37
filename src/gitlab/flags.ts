// The annotation set as builder arguments (buildx, buildah, podman, labels for docker build and
// kaniko), and as json or a GitLab dotenv report. Pure: no I/O, no environment.
//
// Argument lists come out in one of three framings:
//   shell  POSIX shell words on one line, single-quoted where needed, for
//          eval "set -- $(tagtrail flags)"  or  eval "args=($(tagtrail flags))";
//   nul    raw arguments, each ended by a NUL byte, for xargs -0 and readarray -d '';
//   lines  raw arguments, one per line, refused when a value holds a line break.
import { InvalidInputError, UsageError } from '../errors.js';
import type { Annotations } from '../oci/annotations.js';

export const FLAG_FORMATS = ['buildx', 'buildah', 'podman', 'labels', 'json', 'dotenv'] as const;
export type FlagFormat = (typeof FLAG_FORMATS)[number];
/** The formats that are argument lists for a builder. */
export type ArgvFormat = Exclude<FlagFormat, 'json' | 'dotenv'>;

export function isArgvFormat(format: FlagFormat): format is ArgvFormat {
  return format !== 'json' && format !== 'dotenv';
}

/** The annotation levels buildx knows (docker buildx build --annotation "LEVELS:KEY=VALUE"). */
export const BUILDX_LEVELS = ['manifest', 'index', 'manifest-descriptor', 'index-descriptor'] as const;
export type BuildxLevel = (typeof BUILDX_LEVELS)[number];
export const DEFAULT_BUILDX_LEVELS = 'index,manifest';

export type Framing = 'shell' | 'nul' | 'lines';

/** Parses --levels: comma-separated buildx levels, each at most once, in the order given. */
export function parseBuildxLevels(spec: string): BuildxLevel[] {
  const hint = `levels are a comma-separated list of ${BUILDX_LEVELS.join(', ')}; e.g. --levels index,manifest`;
  const parts = spec.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.every((p) => p === '')) throw new UsageError('--levels is empty', { hint });
  const out: BuildxLevel[] = [];
  for (const p of parts) {
    if (p === '') throw new UsageError(`--levels ${JSON.stringify(spec)} has an empty entry`, { hint });
    if (!(BUILDX_LEVELS as readonly string[]).includes(p)) {
      throw new UsageError(`unknown buildx annotation level ${JSON.stringify(p)}`, { hint });
    }
    if (!out.includes(p as BuildxLevel)) out.push(p as BuildxLevel);
  }
  return out;
}

/** The raw argument list a builder takes for these annotations: flag, value, flag, value, … */
export function builderArgs(set: Annotations, format: ArgvFormat, levels: readonly BuildxLevel[] = ['index', 'manifest']): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(set)) {
    switch (format) {
      case 'buildx':
        args.push('--annotation', `${levels.join(',')}:${key}=${value}`);
        break;
      case 'buildah':
      case 'podman':
        args.push('--annotation', `${key}=${value}`);
        break;
      case 'labels':
        args.push('--label', `${key}=${value}`);
        break;
    }
  }
  return args;
}

// Characters that mean nothing to a POSIX shell (nor to bash or zsh) inside a word. A word made
// only of these, not starting with = or ~, is printed bare; every other word is single-quoted.
const BARE = /^[A-Za-z0-9_@%+:,./-][A-Za-z0-9_@%+=:,./-]*$/;

/**
 * One shell word that stands for exactly s. Inside single quotes nothing is special, not even a
 * newline; a single quote itself is written as '\'' (end quote, escaped quote, reopen).
 */
export function shellQuote(s: string): string {
  if (BARE.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Shell words on one line, so `eval "set -- $(…)"` takes them all as arguments of set. */
export function shellWords(args: readonly string[]): string {
  return args.length === 0 ? '' : `${args.map(shellQuote).join(' ')}\n`;
}

/** Each argument followed by a NUL byte: the input xargs -0 and readarray -d '' expect. */
export function nulTerminated(args: readonly string[]): string {
  return args.map((a) => `${a}\0`).join('');
}

function lineBreakError(what: string, key: string, hint: string): InvalidInputError {
  return new InvalidInputError('INVALID_ANNOTATION', `annotation ${JSON.stringify(key)} has a line break in its value, which ${what} cannot hold`, { hint });
}

const LINE_BREAK = /[\n\r]/;

/** One raw argument per line. A value with a line break would split into two, so it is refused. */
export function oneArgPerLine(args: readonly string[], set: Annotations): string {
  for (const [key, value] of Object.entries(set)) {
    if (LINE_BREAK.test(value)) throw lineBreakError('one argument per line', key, 'use --null (for xargs -0) or the default shell-quoted output');
  }
  return args.map((a) => `${a}\n`).join('');
}

export function frame(args: readonly string[], set: Annotations, framing: Framing): string {
  switch (framing) {
    case 'shell':
      return shellWords(args);
    case 'nul':
      return nulTerminated(args);
    case 'lines':
      return oneArgPerLine(args, set);
  }
}

export function annotationsJson(set: Annotations): string {
  return `${JSON.stringify({ ...set }, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// GitLab dotenv reports (artifacts:reports:dotenv)
//
// GitLab reads KEY=VALUE lines: the key is everything before the first "=", and may hold only
// ASCII letters, digits and "_"; the value is taken as written (quotes are not removed, nothing is
// expanded) but stripped of spaces at both ends; a value cannot span lines; no empty lines. The
// file may be at most 5 KiB, and an instance limits how many variables one report may hold.

export const DOTENV_PREFIX = 'TAGTRAIL_ANNOTATION_';
/** GitLab's default size limit for a dotenv report (plan_limits.dotenv_size). */
export const DOTENV_MAX_BYTES = 5 * 1024;
/** The variable limit on GitLab.com's Free plan; self-managed instances default to 150. */
export const DOTENV_MAX_VARIABLES = 50;

/** com.gitlab.ci.pipeline_id → TAGTRAIL_ANNOTATION_COM_GITLAB_CI_PIPELINE_ID */
export function dotenvName(key: string): string {
  return DOTENV_PREFIX + key.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

export interface DotenvResult {
  readonly text: string;
  /** Things GitLab would do differently from what the annotations say; for standard error. */
  readonly warnings: readonly string[];
}

export function dotenvReport(set: Annotations): DotenvResult {
  const seen = new Map<string, string>();
  const lines: string[] = [];
  const warnings: string[] = [];
  for (const [key, value] of Object.entries(set)) {
    if (LINE_BREAK.test(value)) throw lineBreakError('a GitLab dotenv report', key, `leave it out with --remove-annotation ${key}, or use --format json`);
    const name = dotenvName(key);
    const other = seen.get(name);
    if (other !== undefined) {
      throw new InvalidInputError('INVALID_ANNOTATION', `annotations ${JSON.stringify(other)} and ${JSON.stringify(key)} both become the variable ${name}`, {
        hint: `leave one out with --remove-annotation, or use --format json`,
      });
    }
    seen.set(name, key);
    if (value !== value.trim()) warnings.push(`warning: GitLab strips the spaces around the value of ${name} (annotation ${key})`);
    lines.push(`${name}=${value}`);
  }
  const text = lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > DOTENV_MAX_BYTES) {
    warnings.push(`warning: the dotenv report is ${bytes} bytes; GitLab refuses reports over ${DOTENV_MAX_BYTES} bytes unless the instance allows more`);
  }
  if (lines.length > DOTENV_MAX_VARIABLES) {
    warnings.push(`warning: the dotenv report has ${lines.length} variables; GitLab.com Free takes at most ${DOTENV_MAX_VARIABLES} in one report`);
  }
  return { text, warnings };
}
