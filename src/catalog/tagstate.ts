// A tag's state as a fold over its events, so that events applied in any order converge.
//
// Every event is logged (tag_events, manifest_deletions) and the events are totally ordered by
// (at, kind, digest): at equal times a set comes before a manifest deletion, which comes before a
// tag deletion (deletes win ties), and sets tie-break on the digest. The tag's state is the fold of
// its events in that order. The tags row caches the fold and the key of the newest event that took
// effect: an event newer than that key is applied as one step; an older one makes the store replay
// the tag's log. A duplicate (same key) changes nothing.
//
// A crawl's finding ("the registry has this digest under the tag now") is a SET at the crawl's
// start, so it outranks every event dated before the crawl started. When the crawl changes the tag
// it is logged like any event; when it changes nothing, only its newest one is kept on the tags
// row (observed_at, observed_digest) and joins the fold from there. Events cannot be dated in the
// future (events.ts clamps them to their receipt), so a crawl can always bring a tag back to what
// the registry says.

export const SET = 0;
export const MANIFEST_DELETE = 1;
export const TAG_DELETE = 2;
type EventKind = typeof SET | typeof MANIFEST_DELETE | typeof TAG_DELETE;

export interface TagEvent {
  /** Milliseconds since the epoch. */
  at: number;
  kind: EventKind;
  /** The digest set, or the manifest deleted; '' for a tag deletion. */
  digest: string;
}

export interface TagState {
  /** The current digest, or the last one when deleted; null for a tag only ever seen deleted. */
  digest: string | null;
  deletedAt: number | null;
  /** The time of the newest event that took effect. */
  updatedAt: number;
  /** Key of that event, compared against incoming events. */
  lastKind: EventKind;
  lastDigest: string;
  /** The earliest set. */
  firstSeen: number | null;
}

export interface Segment {
  digest: string;
  since: number;
  until: number | null;
  end: 'replaced' | 'deleted' | null;
}

export function compareEvents(a: TagEvent, b: TagEvent): number {
  if (a.at !== b.at) return a.at < b.at ? -1 : 1;
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  return a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0;
}

export function lastEvent(s: TagState): TagEvent {
  return { at: s.updatedAt, kind: s.lastKind, digest: s.lastDigest };
}

export function isLive(s: TagState | null): s is TagState & { digest: string } {
  return s !== null && s.deletedAt === null && s.digest !== null;
}

/** One event applied to a state. Returns the same object when the event has no effect. */
export function step(s: TagState | null, e: TagEvent): TagState | null {
  const key = { updatedAt: e.at, lastKind: e.kind, lastDigest: e.digest };
  switch (e.kind) {
    case SET:
      return { digest: e.digest, deletedAt: null, ...key, firstSeen: s?.firstSeen == null ? e.at : Math.min(s.firstSeen, e.at) };
    case TAG_DELETE:
      if (s === null) return { digest: null, deletedAt: e.at, ...key, firstSeen: null };
      return { ...s, deletedAt: s.deletedAt ?? e.at, ...key };
    case MANIFEST_DELETE:
      // Conditional: deletes the tag only if it points at that digest at that moment.
      if (!isLive(s) || s.digest !== e.digest) return s;
      return { ...s, deletedAt: e.at, ...key };
  }
}

/** Folds events (any order; sorted here) into the final state and the digest segments for history. */
export function fold(events: readonly TagEvent[]): { state: TagState | null; segments: Segment[] } {
  const sorted = [...events].sort(compareEvents);
  let state: TagState | null = null;
  const segments: Segment[] = [];
  let open: Segment | null = null;
  let prev: TagEvent | undefined;
  for (const e of sorted) {
    if (prev && compareEvents(prev, e) === 0) continue;
    prev = e;
    const before: TagState | null = state;
    state = step(state, e);
    if (state === before) continue;
    const wasLive = isLive(before);
    const nowLive = isLive(state);
    if (wasLive && open && (!nowLive || state?.digest !== open.digest)) {
      open.until = e.at;
      open.end = nowLive ? 'replaced' : 'deleted';
      open = null;
    }
    if (nowLive && open === null) {
      open = { digest: state!.digest as string, since: e.at, until: null, end: null };
      segments.push(open);
    }
  }
  return { state, segments };
}
