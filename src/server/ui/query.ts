// The search box: one line of text → the searches it could mean. Pure: no I/O.
//
//   4f2c1a9 … (7 to 64 hex digits)      a commit SHA, or a prefix of one
//   9001 (digits only)                  a pipeline id; with 7 or more digits, also a commit prefix
//   sha256:<64 hex>                     an image digest
//   com.example.team=payments           an annotation with that value (reverse-DNS key)
//   com.example.team=                   an annotation with an empty value
//   anything else, e.g. main, group/app a ref name (branch or tag) and a repository name; a
//                                       reverse-DNS word such as com.example.team also asks
//                                       which images carry that annotation key
//
// A prefix forces one reading: commit:, pipeline:, ref:, repo:, digest:, or key: (which keeps
// the rest as KEY or KEY=VALUE, for keys that are not in reverse-DNS style).
import { isValidDigest } from '../../oci/reference.js';
import { validateAnnotationKey } from '../../oci/annotations.js';

export type SearchTerm =
  | { kind: 'commit'; prefix: string }
  | { kind: 'pipeline'; id: string }
  | { kind: 'digest'; digest: string }
  | { kind: 'annotation'; key: string; value?: string }
  | { kind: 'ref'; name: string }
  | { kind: 'repository'; name: string };

export type SearchKind = SearchTerm['kind'];

export const SEARCH_KINDS: readonly SearchKind[] = ['commit', 'pipeline', 'digest', 'annotation', 'ref', 'repository'];

type ParsedSearch = { ok: true; text: string; terms: SearchTerm[] } | { ok: false; text: string; error: string };

/** The longest query taken (the catalog's names and values are indexed up to this). */
const MAX_QUERY_LENGTH = 512;

const HEX_COMMIT = /^[0-9a-fA-F]{7,64}$/;
const DIGITS = /^[0-9]{1,20}$/;
const PREFIXES = ['commit', 'pipeline', 'ref', 'repo', 'digest', 'key'] as const;

function isAnnotationKey(key: string): boolean {
  try {
    validateAnnotationKey(key);
    return true;
  } catch {
    return false;
  }
}

/**
 * The searches `input` could mean, most specific first. `registryHost`, when given, is taken off
 * the front of a repository name pasted with it (registry.example.com/group/app).
 */
export function parseSearch(input: string, registryHost?: string): ParsedSearch {
  const text = input.trim();
  const fail = (error: string): ParsedSearch => ({ ok: false, text, error });
  if (text === '') return { ok: true, text, terms: [] };
  if (text.length > MAX_QUERY_LENGTH) return fail(`The search is longer than ${MAX_QUERY_LENGTH} characters.`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text)) return fail('The search holds control characters.');

  const colon = text.indexOf(':');
  const prefix = colon > 0 ? text.slice(0, colon).toLowerCase() : '';
  if ((PREFIXES as readonly string[]).includes(prefix)) return forced(prefix as (typeof PREFIXES)[number], text.slice(colon + 1).trim(), text);

  if (/^sha256:[0-9a-fA-F]{64}$/.test(text)) return { ok: true, text, terms: [{ kind: 'digest', digest: text.toLowerCase() }] };
  if (DIGITS.test(text)) {
    const terms: SearchTerm[] = [{ kind: 'pipeline', id: text }];
    if (HEX_COMMIT.test(text)) terms.push({ kind: 'commit', prefix: text.toLowerCase() });
    return { ok: true, text, terms };
  }
  if (HEX_COMMIT.test(text)) {
    const terms: SearchTerm[] = [{ kind: 'commit', prefix: text.toLowerCase() }];
    // Short hex words (cafe1234, deadbeef) could as well be a branch name.
    if (text.length < 40) terms.push({ kind: 'ref', name: text });
    return { ok: true, text, terms };
  }
  const eq = text.indexOf('=');
  if (eq > 0) {
    const key = text.slice(0, eq).trim();
    const value = text.slice(eq + 1).trim();
    if (isAnnotationKey(key)) return { ok: true, text, terms: [{ kind: 'annotation', key, value }] };
  }
  const terms: SearchTerm[] = [{ kind: 'ref', name: text }];
  const repo = repositoryName(text, registryHost);
  if (repo !== undefined) terms.push({ kind: 'repository', name: repo });
  if (isAnnotationKey(text)) terms.push({ kind: 'annotation', key: text });
  return { ok: true, text, terms };
}

function forced(prefix: (typeof PREFIXES)[number], rest: string, text: string): ParsedSearch {
  const fail = (error: string): ParsedSearch => ({ ok: false, text, error });
  if (rest === '') return fail(`Write what to look for after “${prefix}:”.`);
  switch (prefix) {
    case 'commit':
      return /^[0-9a-fA-F]{4,128}$/.test(rest)
        ? { ok: true, text, terms: [{ kind: 'commit', prefix: rest.toLowerCase() }] }
        : fail('A commit is its SHA, or its first 4 or more hex digits.');
    case 'pipeline':
      return /^#?[0-9]{1,20}$/.test(rest) ? { ok: true, text, terms: [{ kind: 'pipeline', id: rest.replace(/^#/, '') }] } : fail('A pipeline id is a number.');
    case 'digest': {
      const d = rest.toLowerCase().startsWith('sha256:') || rest.toLowerCase().startsWith('sha512:') ? rest.toLowerCase() : `sha256:${rest.toLowerCase()}`;
      return isValidDigest(d) ? { ok: true, text, terms: [{ kind: 'digest', digest: d }] } : fail('A digest is sha256: and 64 hex digits.');
    }
    case 'ref':
      return { ok: true, text, terms: [{ kind: 'ref', name: rest }] };
    case 'repo':
      return { ok: true, text, terms: [{ kind: 'repository', name: repositoryName(rest, undefined) ?? rest }] };
    case 'key': {
      const eq = rest.indexOf('=');
      if (eq === 0) return fail('Write the annotation key before “=”.');
      return eq > 0
        ? { ok: true, text, terms: [{ kind: 'annotation', key: rest.slice(0, eq).trim(), value: rest.slice(eq + 1).trim() }] }
        : { ok: true, text, terms: [{ kind: 'annotation', key: rest }] };
    }
  }
}

/** Lower-cased, with the registry host taken off; undefined when it cannot be part of a repository name. */
function repositoryName(text: string, registryHost: string | undefined): string | undefined {
  let name = text;
  if (registryHost && name.toLowerCase().startsWith(`${registryHost.toLowerCase()}/`)) name = name.slice(registryHost.length + 1);
  name = name.replace(/^\/+|\/+$/g, '').toLowerCase();
  return /^[a-z0-9._/-]+$/.test(name) ? name : undefined;
}

/** One line saying what a term looks for, for headings. */
export function describeTerm(t: SearchTerm): string {
  switch (t.kind) {
    case 'commit':
      return t.prefix.length >= 40 ? `Commit ${t.prefix}` : `Commits starting with ${t.prefix}`;
    case 'pipeline':
      return `Pipeline #${t.id}`;
    case 'digest':
      return `Digest ${t.digest}`;
    case 'annotation':
      return t.value === undefined ? `Images with the annotation ${t.key}` : `Annotation ${t.key} = “${t.value}”`;
    case 'ref':
      return `Branch or tag “${t.name}”`;
    case 'repository':
      return `Repositories named like “${t.name}”`;
  }
}
