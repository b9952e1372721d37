// Registry notification envelopes (CNCF distribution's application/vnd.docker.distribution.events.v1+json,
// which GitLab's container registry sends too) → the catalog changes they stand for. Pure: no I/O.
//
// What counts:
//   push   with a tag                      → the tag now points at target.digest
//   delete with a digest and no tag        → that manifest was deleted from the repository
//   delete with a tag                      → the tag was deleted
//   push or delete of a referrers tag      → follow that tag (sha256-<hex>: the build-details
//   (sha256-<hex>)                            referrers of sha256:<hex>; see referrers.ts)
// What is ignored: pull and mount, blob pushes, and manifests pushed by digest alone (the children
// of an index come that way; they are read with their index when it is tagged).
//
// The event's target.url is never used: the caller builds the URL from its own configured
// registry and the repository and digest validated here.
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { isValidDigest, isValidRepository, isValidTag } from '../oci/reference.js';
import { isReferrersTag } from '../oci/referrers.js';
import { subjectOfReferrersTag } from './referrers.js';

export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';

export type CatalogEvent =
  | { kind: 'tag-push'; id: string; at: Date; repository: string; tag: string; digest: string; mediaType: string | undefined; userAgent?: string }
  | { kind: 'manifest-delete'; id: string; at: Date; repository: string; digest: string }
  | { kind: 'tag-delete'; id: string; at: Date; repository: string; tag: string }
  /** A referrers tag was pushed or deleted: read it again (its state now, not the event's). */
  | { kind: 'referrers-tag'; id: string; at: Date; repository: string; tag: string; pushed?: string };

export interface ParsedEnvelope {
  /** In the order the envelope lists them. */
  events: CatalogEvent[];
  /** Events that carry nothing for the catalog (pulls, mounts, blobs, pushes by digest, referrers tags). */
  ignored: number;
}

/** Events in one envelope; distribution sends one at a time, GitLab a handful. */
export const MAX_EVENTS_PER_ENVELOPE = 1000;

const target = z.looseObject({
  mediaType: z.string().max(1024).optional(),
  digest: z.string().max(1024).optional(),
  repository: z.string().max(1024).optional(),
  tag: z.string().max(1024).optional(),
  url: z.string().max(16 * 1024).optional(),
});

const event = z.looseObject({
  id: z.string().max(1024).optional(),
  timestamp: z.string().max(64).optional(),
  action: z.string().max(64),
  target: target.optional(),
  // The push request's User-Agent: which tool pushed (pushers.ts).
  request: z.looseObject({ useragent: z.string().max(4096).optional() }).optional(),
});

const envelope = z.looseObject({
  events: z.array(event).max(MAX_EVENTS_PER_ENVELOPE),
});

function bad(message: string): UsageError {
  return new UsageError(message, {
    hint: `send a notification envelope: {"events": [...]} as ${EVENTS_MEDIA_TYPE}`,
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  return `${path === '' ? 'the body' : path.replace(/^\./, '')}: ${issue.message}`;
}

function shown(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

/**
 * Validates a parsed JSON body as an envelope and returns the events that change the catalog.
 * Every event that counts is checked (repository, tag, digest, timestamp) before any is
 * returned, so a bad envelope changes nothing. Throws UsageError (400) naming the field.
 */
export function parseEnvelope(body: unknown): ParsedEnvelope {
  const parsed = envelope.safeParse(body);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw bad(`invalid notification envelope: ${first ? describeIssue(first) : 'not an envelope'}`);
  }
  const events: CatalogEvent[] = [];
  let ignored = 0;
  parsed.data.events.forEach((e, i) => {
    const where = `events[${i}]`;
    const t = e.target;
    const action = e.action;
    // A referrers tag (sha256-<hex>, written by attach and other OCI 1.1 clients) is not an image
    // tag: a push or delete of one has its build-details referrers followed.
    if (t !== undefined && (action === 'push' || action === 'delete') && subjectOfReferrersTag(t.tag ?? '') !== undefined) {
      const repository = t.repository ?? '';
      if (!isValidRepository(repository)) throw bad(`${where}.target.repository ${shown(repository)} is not a valid repository name`);
      // A push names the index it wrote: distribution notifies before it links the tag to it.
      const pushed = action === 'push' && typeof t.digest === 'string' && isValidDigest(t.digest) ? t.digest : undefined;
      events.push({ kind: 'referrers-tag', id: e.id ?? '', at: parseTimestamp(e.timestamp, `${where}.timestamp`), repository, tag: t.tag as string, ...(pushed ? { pushed } : {}) });
      return;
    }
    const counts = t !== undefined && !isReferrersTag(t.tag ?? '') && ((action === 'push' && t.tag !== undefined && t.tag !== '') || action === 'delete');
    if (!counts) {
      ignored++;
      return;
    }
    const repository = t.repository ?? '';
    if (!isValidRepository(repository)) throw bad(`${where}.target.repository ${shown(repository)} is not a valid repository name`);
    const at = parseTimestamp(e.timestamp, `${where}.timestamp`);
    const id = e.id ?? '';
    const tag = t.tag !== undefined && t.tag !== '' ? t.tag : undefined;
    if (tag !== undefined && !isValidTag(tag)) throw bad(`${where}.target.tag ${shown(tag)} is not a valid tag`);
    const digest = t.digest !== undefined && t.digest !== '' ? t.digest : undefined;
    if (digest !== undefined && !isValidDigest(digest)) throw bad(`${where}.target.digest ${shown(digest)} is not sha256:<64 hex> or sha512:<128 hex>`);

    if (action === 'push') {
      if (digest === undefined) throw bad(`${where}.target.digest is missing from a tag push`);
      const userAgent = e.request?.useragent?.trim();
      events.push({ kind: 'tag-push', id, at, repository, tag: tag as string, digest, mediaType: t.mediaType || undefined, ...(userAgent ? { userAgent } : {}) });
    } else if (tag !== undefined) {
      events.push({ kind: 'tag-delete', id, at, repository, tag });
    } else if (digest !== undefined) {
      events.push({ kind: 'manifest-delete', id, at, repository, digest });
    } else {
      throw bad(`${where}.target has neither a tag nor a digest to delete`);
    }
  });
  return { events, ignored };
}

/** How far past its receipt an event may be dated (clock skew between registry and tagtrail). */
export const MAX_EVENT_SKEW_MS = 5 * 60 * 1000;

/**
 * An event's time as the catalog records it: dated more than MAX_EVENT_SKEW_MS after its
 * receipt, it is recorded at its receipt. A time in the future would outrank every crawl to come
 * (tagstate.ts orders by time), so the registry's present state could never repair the tag.
 */
export function recordedTime(at: Date, receivedAt: Date): Date {
  return at.getTime() > receivedAt.getTime() + MAX_EVENT_SKEW_MS ? receivedAt : at;
}

/** RFC 3339 with any fraction (distribution writes nanoseconds); milliseconds are kept. */
export function parseTimestamp(value: string | undefined, where = 'timestamp'): Date {
  if (value === undefined || value === '') throw bad(`${where} is missing`);
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i.exec(value);
  if (!m) throw bad(`${where} ${shown(value)} is not an RFC 3339 time`);
  const fraction = (m[2] ?? '').slice(0, 3).padEnd(3, '0');
  const ms = Date.parse(`${m[1]}.${fraction}${m[3]?.toUpperCase()}`);
  if (Number.isNaN(ms)) throw bad(`${where} ${shown(value)} is not an RFC 3339 time`);
  return new Date(ms);
}

/** Parses the raw body text: JSON first, then the envelope. */
export function parseEnvelopeText(text: string): ParsedEnvelope {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad('the body is not valid JSON');
  }
  return parseEnvelope(json);
}
