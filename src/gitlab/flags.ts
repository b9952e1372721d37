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
import { type DotenvLimits, type DotenvReport, type DotenvVariable, writeDotenv } from './dotenv.js';

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
// The annotation set as a GitLab dotenv report: one TAGTRAIL_ANNOTATION_<KEY> variable per
// annotation, written by gitlab/dotenv.ts within GitLab's limits.

export const DOTENV_PREFIX = 'TAGTRAIL_ANNOTATION_';

/**
 * The CI keys, most useful first, for when a report cannot hold them all: what finds the pipeline
 * and the commit, then the ref, then the rest; the OCI keys that repeat a CI value come last.
 * Keys not listed (those given with --annotation) rank above all of these: they were asked for.
 */
const DOTENV_RANK = [
  'com.gitlab.ci.pipeline_url',
  'com.gitlab.ci.pipeline_id',
  'com.gitlab.ci.commit_sha',
  'com.gitlab.ci.job_url',
  'com.gitlab.ci.commit_ref_name',
  'com.gitlab.ci.tag',
  'com.gitlab.ci.merge_request_iid',
  'com.gitlab.ci.project_path',
  'org.opencontainers.image.created',
  'org.opencontainers.image.version',
  'com.gitlab.ci.job_id',
  'com.gitlab.ci.branch',
  'com.gitlab.ci.project_url',
  'com.gitlab.ci.pipeline_source',
  'com.gitlab.ci.job_name',
  'com.gitlab.ci.commit_timestamp',
  'com.gitlab.ci.pipeline_iid',
  'com.gitlab.ci.project_id',
  'com.gitlab.ci.server_url',
  'com.gitlab.ci.user_login',
  'com.gitlab.ci.user_id',
  'org.opencontainers.image.title',
  'org.opencontainers.image.revision',
  'org.opencontainers.image.source',
  'org.opencontainers.image.url',
];

function rank(key: string): number {
  const i = DOTENV_RANK.indexOf(key);
  return i < 0 ? -1 : i;
}

/** com.gitlab.ci.pipeline_id → TAGTRAIL_ANNOTATION_COM_GITLAB_CI_PIPELINE_ID */
export function dotenvName(key: string): string {
  return DOTENV_PREFIX + key.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** The report's variables, most useful first. Refuses values GitLab cannot take and names that collide. */
export function dotenvVariables(set: Annotations): DotenvVariable[] {
  const seen = new Map<string, string>();
  const keys = Object.keys(set)
    .map((k, i) => ({ k, i }))
    .sort((a, b) => rank(a.k) - rank(b.k) || a.i - b.i)
    .map(({ k }) => k);
  const out: DotenvVariable[] = [];
  for (const key of keys) {
    const value = set[key] as string;
    if (LINE_BREAK.test(value)) throw lineBreakError('a GitLab dotenv report', key, `leave it out with --remove-annotation ${key}, or use --output json`);
    const name = dotenvName(key);
    const other = seen.get(name);
    if (other !== undefined) {
      throw new InvalidInputError('INVALID_ANNOTATION', `annotations ${JSON.stringify(other)} and ${JSON.stringify(key)} both become the variable ${name}`, {
        hint: `leave one out with --remove-annotation, or use --output json`,
      });
    }
    seen.set(name, key);
    out.push({ name, value });
  }
  return out;
}

export function dotenvReport(set: Annotations, limits: DotenvLimits): DotenvReport {
  return writeDotenv(dotenvVariables(set), limits);
}
