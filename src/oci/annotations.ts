// Annotation keys and values: validation, KEY=VALUE parsing, and applying a change set.
import { InvalidInputError } from '../errors.js';

export type Annotations = Record<string, string>;

/** The prefix of the OCI image spec's pre-defined annotation keys. */
export const OCI_PREFIX = 'org.opencontainers.image.';
/** When the image (or a referrer) was created, RFC 3339: also the order of build-details referrers. */
export const CREATED_KEY = `${OCI_PREFIX}created`;

/** A CREATED_KEY value: RFC 3339 UTC, whole seconds (2026-11-26T16:48:13Z). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const MAX_KEY_BYTES = 255;
export const MAX_VALUE_BYTES = 16 * 1024;
const MAX_ANNOTATIONS = 512;

// Reverse-DNS style: two or more dot-separated components, the first lowercase (a TLD-like
// prefix such as com, org, io, vnd), later ones letters, digits, _ and -.
const KEY = /^[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)+$/;
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function badAnnotation(message: string, hint: string): InvalidInputError {
  return new InvalidInputError('INVALID_ANNOTATION', message, { hint });
}

function shown(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

export function validateAnnotationKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw badAnnotation('annotation key is empty', 'use a reverse-DNS key such as com.example.team=payments');
  }
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw badAnnotation(`annotation key ${shown(key)} is longer than ${MAX_KEY_BYTES} bytes`, 'use a shorter key');
  }
  if (!KEY.test(key)) {
    throw badAnnotation(
      `annotation key ${shown(key)} is not in reverse-DNS style`,
      'keys look like com.example.team or org.opencontainers.image.source: dot-separated, letters, digits, _ and -',
    );
  }
}

export function validateAnnotationValue(key: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw badAnnotation(`annotation ${shown(key)} has a value that is not a string`, 'annotation values are strings');
  if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) {
    throw badAnnotation(`annotation ${shown(key)} has a value longer than ${MAX_VALUE_BYTES} bytes`, 'shorten the value or store a URL to it');
  }
  if (FORBIDDEN_CHARS.test(value)) {
    throw badAnnotation(`annotation ${shown(key)} has a control character in its value`, 'remove control characters; tabs and newlines are allowed');
  }
  if (LONE_SURROGATE.test(value)) {
    throw badAnnotation(`annotation ${shown(key)} has a value that is not valid Unicode`, 'pass the value as UTF-8 text');
  }
}

export function validateAnnotations(annotations: Annotations): void {
  const keys = Object.keys(annotations);
  if (keys.length > MAX_ANNOTATIONS) throw badAnnotation(`too many annotations (${keys.length}, at most ${MAX_ANNOTATIONS})`, 'annotate fewer keys');
  for (const k of keys) {
    validateAnnotationKey(k);
    validateAnnotationValue(k, annotations[k]);
  }
}

/** Parses one `-a KEY=VALUE`. The value may hold further `=` signs and may be empty. */
export function parseAnnotationArg(arg: string): [string, string] {
  const eq = arg.indexOf('=');
  if (eq < 0) {
    throw badAnnotation(`annotation ${shown(arg)} has no "=": expected KEY=VALUE`, 'write it as --annotation com.example.key=value');
  }
  const key = arg.slice(0, eq);
  const value = arg.slice(eq + 1);
  validateAnnotationKey(key);
  validateAnnotationValue(key, value);
  return [key, value];
}

/** A null-prototype record, so keys such as __proto__ are plain data. */
export function emptyAnnotations(): Annotations {
  return Object.create(null) as Annotations;
}

export function toAnnotations(entries: Iterable<readonly [string, string]>): Annotations {
  const out = emptyAnnotations();
  for (const [k, v] of entries) out[k] = v;
  return out;
}

export interface AnnotationChanges {
  /** Keys to set; each overrides what the manifest has. */
  readonly set: Annotations;
  /** Keys set only when the manifest does not have them yet (e.g. the creation time). */
  readonly setIfAbsent?: Annotations;
  readonly remove: readonly string[];
}

export interface AnnotationDiff {
  readonly added: Annotations;
  readonly changed: Record<string, { from: string; to: string }>;
  readonly removed: Annotations;
}

/** Applies changes, keeping the existing key order and appending new keys sorted. */
export function applyAnnotationChanges(existing: Annotations | undefined, changes: AnnotationChanges): Annotations {
  const out = emptyAnnotations();
  const removeSet = new Set(changes.remove);
  for (const [k, v] of Object.entries(existing ?? {})) {
    if (removeSet.has(k)) continue;
    out[k] = Object.prototype.hasOwnProperty.call(changes.set, k) ? (changes.set[k] as string) : v;
  }
  const additions: [string, string][] = [];
  for (const [k, v] of Object.entries(changes.set)) {
    if (removeSet.has(k) || Object.prototype.hasOwnProperty.call(out, k)) continue;
    additions.push([k, v]);
  }
  for (const [k, v] of Object.entries(changes.setIfAbsent ?? {})) {
    if (removeSet.has(k) || Object.prototype.hasOwnProperty.call(out, k) || Object.prototype.hasOwnProperty.call(changes.set, k)) continue;
    additions.push([k, v]);
  }
  additions.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [k, v] of additions) out[k] = v;
  return out;
}

export function diffAnnotations(before: Annotations | undefined, after: Annotations): AnnotationDiff {
  const b = before ?? {};
  const added = emptyAnnotations();
  const removed = emptyAnnotations();
  const changed: Record<string, { from: string; to: string }> = Object.create(null);
  for (const [k, v] of Object.entries(after)) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) added[k] = v;
    else if (b[k] !== v) changed[k] = { from: b[k] as string, to: v };
  }
  for (const [k, v] of Object.entries(b)) if (!Object.prototype.hasOwnProperty.call(after, k)) removed[k] = v;
  return { added, changed, removed };
}

export function isEmptyDiff(d: AnnotationDiff): boolean {
  return Object.keys(d.added).length === 0 && Object.keys(d.changed).length === 0 && Object.keys(d.removed).length === 0;
}
