// Query parameters of the API and the browser pages, checked before they reach the store. A bad
// one is a 400 whose message names it (the pages show it on an error page); in the API an unknown
// one too, so a typo (commits=…) never silently widens a search.
import { InvalidCursorError, UsageError } from '../errors.js';
import type { AnnotationFilter, SearchQuery } from '../catalog/types.js';
import { API_MAX_PAGE_SIZE, MAX_INSIGHT_WEEKS } from '../catalog/paging.js';
import { isValidRepository, isValidTag } from '../oci/reference.js';

const MAX_ANNOTATION_FILTERS = 20;
const MAX_KEY = 255;
const MAX_VALUE = 16 * 1024;
const MAX_CURSOR = 2048;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function shown(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function bad(name: string, message: string, hint?: string): UsageError {
  return new UsageError(`parameter ${name}: ${message}`, hint ? { hint } : {});
}

function checkKnown(params: URLSearchParams, known: readonly string[], repeatable: readonly string[] = []): void {
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (!known.includes(name)) throw bad(name.slice(0, 80), 'unknown parameter', `known parameters: ${known.join(', ')}`);
    if (seen.has(name) && !repeatable.includes(name)) throw bad(name, 'given more than once');
    seen.add(name);
  }
}

function one(params: URLSearchParams, name: string): string | undefined {
  const v = params.get(name);
  return v === null ? undefined : v;
}

function text(params: URLSearchParams, name: string, max: number): string | undefined {
  const v = one(params, name);
  if (v === undefined) return undefined;
  if (v === '') throw bad(name, 'is empty');
  if (v.length > max) throw bad(name, `is longer than ${max} characters`);
  if (CONTROL.test(v)) throw bad(name, 'holds a control character');
  return v;
}

function limit(params: URLSearchParams, max: number): number | undefined {
  const v = one(params, 'limit');
  if (v === undefined) return undefined;
  if (!/^\d{1,6}$/.test(v) || Number(v) < 1 || Number(v) > max) throw bad('limit', `${shown(v)} is not a whole number from 1 to ${max}`);
  return Number(v);
}

/** A cursor parameter: the nextCursor of a page before, as handed out. */
export function parseCursor(params: URLSearchParams, name = 'cursor'): string | undefined {
  const v = one(params, name);
  if (v === undefined) return undefined;
  if (v.length === 0 || v.length > MAX_CURSOR || !/^[A-Za-z0-9_-]+$/.test(v)) {
    throw new InvalidCursorError(`parameter ${name}: is not a cursor this API handed out`, { hint: 'pass back the nextCursor of the previous page, with the same query' });
  }
  return v;
}

interface PagingOptions {
  /** The largest page the caller serves (the API's, or the pages' UI_MAX_PAGE_SIZE). */
  max?: number;
  cursorName?: string;
}

/**
 * limit= and cursor=: one parser for the API and the browser pages. The pages call it alone, as
 * they take parameters of their own; the API calls it after checking every name is known.
 */
export function parsePaging(params: URLSearchParams, options: PagingOptions = {}): { limit?: number; cursor?: string } {
  const l = limit(params, options.max ?? API_MAX_PAGE_SIZE);
  const c = parseCursor(params, options.cursorName ?? 'cursor');
  return { ...(l !== undefined ? { limit: l } : {}), ...(c !== undefined ? { cursor: c } : {}) };
}

function paging(params: URLSearchParams): { limit?: number; cursor?: string } {
  return parsePaging(params);
}

/** annotation=KEY=VALUE (equal), annotation=KEY (exists). A value may hold further = signs and may be empty. */
function parseAnnotationFilter(raw: string): AnnotationFilter {
  if (raw === '') throw bad('annotation', 'is empty', 'write annotation=KEY=VALUE, or annotation=KEY for "has the key"');
  const eq = raw.indexOf('=');
  const key = eq < 0 ? raw : raw.slice(0, eq);
  if (key === '') throw bad('annotation', `${shown(raw)} has no key before "="`, 'write annotation=KEY=VALUE');
  if (key.length > MAX_KEY) throw bad('annotation', `the key is longer than ${MAX_KEY} characters`);
  if (CONTROL.test(key) || /\s/.test(key)) throw bad('annotation', `the key ${shown(key)} holds white space or a control character`);
  if (eq < 0) return { key };
  const value = raw.slice(eq + 1);
  if (value.length > MAX_VALUE) throw bad('annotation', `the value of ${shown(key)} is longer than ${MAX_VALUE} characters`);
  if (value.includes('\u0000')) throw bad('annotation', `the value of ${shown(key)} holds a NUL character`);
  return { key, value };
}

const IMAGE_PARAMS = ['repository', 'tag', 'annotation', 'commit', 'pipeline', 'ref', 'verified', 'limit', 'cursor'] as const;

export function parseImageQuery(params: URLSearchParams): SearchQuery {
  checkKnown(params, IMAGE_PARAMS, ['annotation']);
  const query: SearchQuery = paging(params);
  const repository = one(params, 'repository');
  if (repository !== undefined) {
    if (!isValidRepository(repository)) throw bad('repository', `${shown(repository)} is not a repository name`, 'a repository name looks like group/project/app: lowercase letters, digits and . _ - between slashes');
    query.repository = repository;
  }
  const tag = one(params, 'tag');
  if (tag !== undefined) {
    if (!isValidTag(tag)) throw bad('tag', `${shown(tag)} is not a tag`, 'a tag has letters, digits, _ . and -, at most 128, not starting with . or -');
    query.tag = tag;
  }
  const annotations = params.getAll('annotation');
  if (annotations.length > MAX_ANNOTATION_FILTERS) throw bad('annotation', `given ${annotations.length} times, at most ${MAX_ANNOTATION_FILTERS}`);
  if (annotations.length > 0) query.annotations = annotations.map(parseAnnotationFilter);
  const commit = one(params, 'commit');
  if (commit !== undefined) {
    if (!/^[0-9a-fA-F]{4,64}$/.test(commit)) throw bad('commit', `${shown(commit)} is not a commit SHA or a prefix of one`, 'pass the commit SHA, or its first 4 or more hex digits');
    query.commit = commit.toLowerCase();
  }
  const pipeline = one(params, 'pipeline');
  if (pipeline !== undefined) {
    if (!/^\d{1,20}$/.test(pipeline)) throw bad('pipeline', `${shown(pipeline)} is not a pipeline ID`, 'a pipeline ID is a number, e.g. pipeline=123456');
    query.pipeline = pipeline;
  }
  const ref = text(params, 'ref', 255);
  if (ref !== undefined) query.ref = ref;
  const verified = one(params, 'verified');
  if (verified !== undefined) {
    if (verified !== 'true' && verified !== 'false') throw bad('verified', `${shown(verified)} is not true or false`, 'verified=true lists only images whose build report GitLab verified');
    if (verified === 'true') query.verified = true;
  }
  return query;
}

export function parseRepositoryQuery(params: URLSearchParams): { q?: string; limit?: number; cursor?: string } {
  checkKnown(params, ['q', 'limit', 'cursor']);
  const q = one(params, 'q');
  if (q !== undefined && (q.length > 255 || CONTROL.test(q))) throw bad('q', 'is longer than 255 characters or holds a control character');
  return { ...paging(params), ...(q !== undefined && q !== '' ? { q } : {}) };
}

export function parseListQuery(params: URLSearchParams): { limit?: number; cursor?: string } {
  checkKnown(params, ['limit', 'cursor']);
  return paging(params);
}

/** A whole number from a fixed set (the insights page's weeks=); absent, `fallback`. */
export function parseChoice(params: URLSearchParams, name: string, choices: readonly number[], fallback: number): number {
  const v = one(params, name);
  if (v === undefined) return fallback;
  if (!/^\d{1,6}$/.test(v) || !choices.includes(Number(v))) throw bad(name, `${shown(v)} is not one of ${choices.join(', ')}`);
  return Number(v);
}

const INSIGHTS_PARAMS = ['namespace', 'repository', 'from', 'to', 'interval', 'format'] as const;
const NAMESPACE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const WEEK_MS = 7 * 86_400_000;
/** The longest window one insights request covers (the store's limit too). */

interface InsightsParams {
  namespace?: string;
  repository?: string;
  from?: Date;
  to?: Date;
  format: 'json' | 'csv';
}

/** YYYY-MM-DD (UTC midnight) or a full RFC 3339 time. */
function dateParam(params: URLSearchParams, name: string): Date | undefined {
  const v = one(params, name);
  if (v === undefined) return undefined;
  const ok = /^\d{4}-\d{2}-\d{2}$/.test(v) || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(v);
  const d = ok ? new Date(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v) : new Date(NaN);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1970 || d.getUTCFullYear() > 9999) {
    throw bad(name, `${shown(v)} is not a date`, `write ${name}=YYYY-MM-DD (UTC) or an RFC 3339 time such as 2026-01-05T00:00:00Z`);
  }
  return d;
}

/** GET /api/v1/insights[.csv] parameters; `csvPath` is true for /api/v1/insights.csv. */
export function parseInsightsQuery(params: URLSearchParams, csvPath = false): InsightsParams {
  checkKnown(params, INSIGHTS_PARAMS);
  const out: InsightsParams = { format: csvPath ? 'csv' : 'json' };
  const format = one(params, 'format');
  if (format !== undefined) {
    if (format !== 'json' && format !== 'csv') throw bad('format', `${shown(format)} is not json or csv`);
    if (csvPath && format !== 'csv') throw bad('format', `${shown(format)} contradicts the .csv path`, 'drop format=, or use /api/v1/insights');
    out.format = format;
  }
  const interval = one(params, 'interval');
  if (interval !== undefined && interval !== 'week') throw bad('interval', `${shown(interval)} is not supported`, 'interval=week is the only interval');
  const namespace = one(params, 'namespace');
  if (namespace !== undefined) {
    if (!NAMESPACE.test(namespace) || namespace.length > 255) throw bad('namespace', `${shown(namespace)} is not a namespace`, 'a namespace is the first path segment of a repository: lowercase letters, digits and . _ -');
    out.namespace = namespace;
  }
  const repository = one(params, 'repository');
  if (repository !== undefined) {
    if (!isValidRepository(repository)) throw bad('repository', `${shown(repository)} is not a repository name`, 'a repository name looks like group/project/app: lowercase letters, digits and . _ - between slashes');
    if (namespace !== undefined && repository.split('/')[0] !== namespace) throw bad('repository', `${shown(repository)} is not in namespace ${shown(namespace)}`, 'give one of them, or a repository inside the namespace');
    out.repository = repository;
  }
  const from = dateParam(params, 'from');
  const to = dateParam(params, 'to');
  if (from && to) {
    if (from.getTime() > to.getTime()) throw bad('from', `${from.toISOString().slice(0, 10)} is after to=${to.toISOString().slice(0, 10)}`);
    if ((to.getTime() - from.getTime()) / WEEK_MS >= MAX_INSIGHT_WEEKS) throw bad('from', `the window from ${shown(from.toISOString().slice(0, 10))} to ${shown(to.toISOString().slice(0, 10))} is longer than ${MAX_INSIGHT_WEEKS} weeks`, 'ask for a shorter window');
  }
  if (from && !to && (Date.now() - from.getTime()) / WEEK_MS >= MAX_INSIGHT_WEEKS) throw bad('from', `${shown(from.toISOString().slice(0, 10))} is more than ${MAX_INSIGHT_WEEKS} weeks ago`, 'pass a later from, or a to within the range');
  if (from) out.from = from;
  if (to) out.to = to;
  return out;
}
