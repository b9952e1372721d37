// Which URLs from annotations become links. Annotation values are untrusted: anyone who can push
// an image can write them. A value becomes a link only when it is an absolute http(s) URL on one
// of the GitLab servers named with --gitlab-url; anything else is shown as plain text.
// Pure: no I/O.
import { UsageError } from '../../errors.js';
import type { Build } from '../../gitlab/build.js';

export const DEFAULT_GITLAB_URL = 'https://gitlab.com';

/** One allowed GitLab server: its origin, and the path it lives under ('' at the root). */
export interface GitlabServer {
  origin: string;
  /** e.g. '/gitlab' for a server installed under a relative URL; never ends with a slash. */
  pathPrefix: string;
}

// ASCII controls, space, DEL, backslash, and the Unicode spaces and invisible characters a
// browser or the URL parser might drop or fold. A URL holding any of them is refused outright,
// rather than trusting what the parser makes of it.
const SUSPICIOUS_RANGES: readonly (readonly [number, number])[] = [
  [0x00, 0x20],
  [0x5c, 0x5c], // backslash, which the parser reads as a slash
  [0x7f, 0xa0],
  [0xad, 0xad],
  [0x115f, 0x1160],
  [0x1680, 0x1680],
  [0x180e, 0x180e],
  [0x2000, 0x200f],
  [0x2028, 0x202f],
  [0x205f, 0x206f],
  [0x3000, 0x3000],
  [0x3164, 0x3164],
  [0xfe00, 0xfe0f], // variation selectors
  [0xfeff, 0xfeff],
  [0xffa0, 0xffa0],
  [0xfff0, 0xffff],
];

function suspicious(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (SUSPICIOUS_RANGES.some(([lo, hi]) => c >= lo && c <= hi)) return true;
    // Lone surrogates and tag characters (U+E0000…) in surrogate form: refuse every astral
    // character, since no GitLab URL needs one unencoded.
    if (c >= 0xd800 && c <= 0xdfff) return true;
  }
  return false;
}

const MAX_URL_LENGTH = 4096;

/** A commit SHA as git writes it (abbreviated to 7 or more, SHA-1 or SHA-256): the only value offered to copy as one. */
const COMMIT_SHA = /^[0-9a-f]{7,64}$/;

export function isCommitSha(value: unknown): value is string {
  return typeof value === 'string' && COMMIT_SHA.test(value);
}

// A dot segment, or a percent-encoded slash, backslash or dot (also double-encoded): each can
// move a link built from an annotation (a ref name, a pipeline URL) to another page of the server
// once the URL parser or GitLab decodes and resolves it.
const TRAVERSAL = /%(?:25)*(?:2e|2f|5c)/i;

function hasDotSegment(value: string): boolean {
  const rest = value.slice(value.indexOf('//') + 2);
  const path = rest.slice(rest.search(/[/?#]|$/)).split(/[?#]/, 1)[0] ?? '';
  return path.split('/').some((s) => s === '.' || s === '..');
}

/**
 * Parses the --gitlab-url values (each may be a comma-separated list, as TAGTRAIL_GITLAB_URL is)
 * into servers. Each must be an http(s) URL without credentials, query or fragment.
 */
export function parseGitlabUrls(values: readonly string[]): GitlabServer[] {
  const servers: GitlabServer[] = [];
  for (const entry of values.flatMap((v) => v.split(','))) {
    const text = entry.trim();
    if (text === '') continue;
    const bad = (why: string): UsageError =>
      new UsageError(`--gitlab-url ${JSON.stringify(text.slice(0, 200))}: ${why}`, {
        hint: 'name the GitLab server as its base URL, e.g. --gitlab-url https://gitlab.example.com (repeatable; TAGTRAIL_GITLAB_URL takes a comma-separated list)',
      });
    if (suspicious(text)) throw bad('it contains white space, control characters or a backslash');
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      throw bad('it is not an absolute URL');
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad('it must start with https:// or http://');
    if (u.username !== '' || u.password !== '') throw bad('it must not hold a user name or password');
    if (u.search !== '' || u.hash !== '' || text.includes('?') || text.includes('#')) throw bad('it must not have a query or fragment');
    const pathPrefix = u.pathname.replace(/\/+$/, '');
    if (!servers.some((s) => s.origin === u.origin && s.pathPrefix === pathPrefix)) servers.push({ origin: u.origin, pathPrefix });
  }
  return servers;
}

/**
 * The --gitlab-url values, else TAGTRAIL_GITLAB_URL (comma-separated), else https://gitlab.com;
 * checked here so that a bad one stops the server before it starts.
 */
export function gitlabUrlsFrom(flags: readonly string[] | undefined, env: string | undefined): string[] {
  const urls = flags && flags.length > 0 ? [...flags] : env !== undefined && env.trim() !== '' ? [env] : [DEFAULT_GITLAB_URL];
  if (parseGitlabUrls(urls).length === 0) throw new UsageError('--gitlab-url is empty', { hint: `name at least one GitLab server, e.g. --gitlab-url ${DEFAULT_GITLAB_URL}` });
  return urls;
}

/**
 * The href to use for `value`, or undefined when it must stay plain text. Accepted: an absolute
 * http(s) URL whose origin (scheme, host, port) is exactly that of an allowed server, under the
 * server's path, with no user name or password. The href returned is the parser's normal form,
 * never the input as written.
 */
export function safeHref(value: unknown, servers: readonly GitlabServer[]): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_URL_LENGTH) return undefined;
  if (suspicious(value) || TRAVERSAL.test(value) || hasDotSegment(value)) return undefined;
  // Absolute URLs only: no scheme-relative (//host), no relative paths.
  if (!/^https?:\/\/[^/]/i.test(value)) return undefined;
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  if (u.username !== '' || u.password !== '') return undefined;
  // The authority as written must be exactly what was parsed: no '@', and a host in plain ASCII
  // (an internationalised host name is shown as text rather than trusted in its punycode form).
  const authority = value.slice(value.indexOf('//') + 2).split(/[/?#]/, 1)[0] ?? '';
  if (authority.includes('@') || !/^[A-Za-z0-9.:[\]-]+$/.test(authority)) return undefined;
  for (const s of servers) {
    if (u.origin !== s.origin) continue;
    if (s.pathPrefix === '' || u.pathname === s.pathPrefix || u.pathname.startsWith(`${s.pathPrefix}/`)) return u.href;
  }
  return undefined;
}

/**
 * A build's URLs as the API gives them: each only when safeHref accepts it (in its normal form),
 * exactly as the browser links them. The raw values stay in the annotations.
 */
export function checkedBuildLinks(build: Build, servers: readonly GitlabServer[]): Build {
  const out: Build = { ...build };
  const keys = ['pipeline', 'job', 'commit', 'ref', 'mergeRequest', 'project'] as const;
  for (const key of keys) {
    const part = build[key] as { url?: string } | undefined;
    if (part === undefined || part.url === undefined) continue;
    const { url, ...rest } = part;
    const href = safeHref(url, servers);
    (out as unknown as Record<string, unknown>)[key] = href === undefined ? rest : { ...rest, url: href };
  }
  return out;
}
