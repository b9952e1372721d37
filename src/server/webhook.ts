// POST /api/v1/events: registry notifications, authenticated by a shared secret, applied to the
// catalog. Safe to replay: every store write is idempotent and ordered by the event's timestamp,
// so duplicates change nothing and an older event arriving late never undoes a newer one.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  AuthError,
  DigestMismatchError,
  InvalidInputError,
  UnreadableManifestError,
  NetworkError,
  NotFoundError,
  PayloadTooLargeError,
  RegistryError,
  UsageError,
} from '../errors.js';
import { readBounded } from '../bounded-body.js';
import { type CatalogEvent, EVENTS_MEDIA_TYPE, recordedTime } from '../catalog/events.js';
import type { Ingestor } from '../catalog/ingest.js';
import type { BuildEvidence, ReferrerLinks, StoreWriter, TagPush } from '../catalog/store.js';
import { pusherOfUserAgent } from '../catalog/pushers.js';
import type { EventOutcome } from '../catalog/types.js';

/** The body cap: distribution sends one event per envelope, GitLab a few. */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

/** Shortest webhook secret serve accepts. */
export const MIN_SECRET_LENGTH = 16;

/**
 * Compares the Authorization header with the secret in constant time. The header may hold the
 * secret bare (as GitLab's registry and distribution's `headers:` send it) or as `Bearer SECRET`.
 * Both sides are HMAC'd with a random key first, so neither the length nor the content of the
 * secret shows in the timing.
 */
export function secretChecker(secret: string): (authorization: string | undefined) => boolean {
  const key = randomBytes(32);
  const mac = (s: string): Buffer => createHmac('sha256', key).update(s, 'utf8').digest();
  const expected = mac(secret);
  return (authorization) => {
    if (authorization === undefined) return false;
    const value = authorization.trim();
    const bearer = /^bearer\s+/i.exec(value);
    const bare = timingSafeEqual(mac(value), expected);
    const token = timingSafeEqual(mac(bearer ? value.slice(bearer[0].length).trim() : value), expected);
    return bare || token;
  };
}

/** Reads at most max bytes of the body as UTF-8 text. */
export async function readBodyText(req: Request, max: number): Promise<string> {
  const bytes = await readBounded(req.body, req.headers.get('content-length'), max, (declared) =>
    new PayloadTooLargeError(`the body is ${declared !== undefined ? `${declared} bytes, ` : ''}over the ${max}-byte limit`),
  );
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError('the body is not UTF-8 text');
  }
}

export function checkContentType(contentType: string | undefined): void {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === EVENTS_MEDIA_TYPE || type === 'application/json') return;
  throw new UsageError(`Content-Type ${JSON.stringify(type.slice(0, 100))} is not ${EVENTS_MEDIA_TYPE}`, {
    hint: `send the envelope as ${EVENTS_MEDIA_TYPE} (or application/json)`,
  });
}

type EventResult = EventOutcome | 'unreadable' | 'missing';

interface ApplyResult {
  applied: number;
  superseded: number;
  duplicate: number;
  /** Tag pushes whose manifest could not be parsed; the tag itself was recorded. */
  unreadable: number;
  /** Tag pushes of a digest the registry does not have in that repository: nothing was recorded. */
  missing: number;
  /** Events dated more than 5 minutes after their receipt: recorded at their receipt (events.ts). */
  clamped: number;
}

interface ApplyOptions {
  store: StoreWriter & ReferrerLinks & BuildEvidence;
  ingestor: Ingestor;
  onEvent?: (event: CatalogEvent, result: EventResult) => void;
  onUnreadable?: (event: CatalogEvent, err: unknown) => void;
  /** When the envelope arrived (the server's clock). */
  receivedAt: Date;
  /** Writes a tag push (with its new manifest, if any); default store.pushTag. serve batches them (push-batch.ts). */
  pushTag?: (push: TagPush) => Promise<{ outcome: EventOutcome }>;
}

/**
 * Applies events in order. A registry that cannot be read throws RegistryError (502), so the
 * registry resends the envelope later; what was applied before is applied again as a duplicate.
 */
export async function applyEvents(events: readonly CatalogEvent[], options: ApplyOptions): Promise<ApplyResult> {
  const { store, ingestor } = options;
  const pushTag = options.pushTag ?? ((push: TagPush) => store.pushTag(push));
  const result: ApplyResult = { applied: 0, superseded: 0, duplicate: 0, unreadable: 0, missing: 0, clamped: 0 };
  for (const sent of events) {
    const at = recordedTime(sent.at, options.receivedAt);
    if (at !== sent.at) result.clamped++;
    const e: CatalogEvent = { ...sent, at };
    let outcome: EventOutcome;
    let unreadable = false;
    switch (e.kind) {
      case 'tag-push': {
        let missing = false;
        // Builder evidence: the first push of a manifest names the tool that pushed it (in the tag's transaction).
        const push = { repository: e.repository, tag: e.tag, digest: e.digest, at: e.at, ...(e.userAgent ? { pushedBy: { userAgent: e.userAgent, pusher: pusherOfUserAgent(e.userAgent) } } : {}) };
        // A new manifest is written with its tag, in one transaction; set when that ran.
        let pushed: EventOutcome | undefined;
        try {
          const ingested = await ingestor.ingest(e.repository, e.digest, async (manifest) => {
            pushed = (await pushTag({ ...push, manifest })).outcome;
          });
          // A known manifest is not read again, but the registry must have it in this repository.
          if (ingested === 'known') missing = !(await ingestor.registryHas(e.repository, e.digest));
        } catch (err) {
          if (err instanceof NotFoundError) {
            missing = true;
          } else if (err instanceof InvalidInputError || err instanceof UnreadableManifestError) {
            // A manifest tagtrail cannot read (schema 1): the tag still moved.
            unreadable = true;
            options.onUnreadable?.(e, err);
          } else if (err instanceof AuthError || err instanceof RegistryError || err instanceof NetworkError || err instanceof DigestMismatchError) {
            throw new RegistryError(`reading ${e.repository}@${e.digest} from the registry failed: ${err.message}`, err instanceof RegistryError ? err.status : 502, [], {
              cause: err,
              hint: 'the registry will send the event again; check that tagtrail serve can reach and read the registry',
            });
          } else {
            throw err;
          }
        }
        if (missing) {
          // The registry does not have it (deleted since, or never pushed): nothing changes. A
          // deletion's own event follows; the crawl records what the registry says now.
          result.missing++;
          options.onEvent?.(e, 'missing');
          continue;
        }
        // A known manifest, one an event for another tag was storing meanwhile, or an unreadable one: the tag alone.
        outcome = pushed ?? (await pushTag(push)).outcome;
        break;
      }
      case 'tag-delete':
        outcome = await store.deleteTag(e.repository, e.tag, e.at);
        break;
      case 'manifest-delete':
        // Recorded even when no tag points at it (yet): an older push arriving later stays deleted.
        await store.deleteManifest(e.repository, e.digest, e.at);
        // A deleted build-details referrer no longer lends its details (sql/referrers.ts).
        await store.removeReferrer(e.repository, e.digest);
        outcome = 'applied';
        break;
      case 'referrers-tag':
        try {
          await ingestor.followReferrersTag(e.repository, e.tag, undefined, e.pushed);
        } catch (err) {
          if (err instanceof AuthError || err instanceof RegistryError || err instanceof NetworkError || err instanceof DigestMismatchError) {
            throw new RegistryError(`reading the referrers tag ${e.repository}:${e.tag} from the registry failed: ${err.message}`, err instanceof RegistryError ? err.status : 502, [], {
              cause: err,
              hint: 'the registry will send the event again; check that tagtrail serve can reach and read the registry',
            });
          }
          throw err;
        }
        outcome = 'applied';
        break;
    }
    result[outcome]++;
    if (unreadable) result.unreadable++;
    options.onEvent?.(e, unreadable ? 'unreadable' : outcome);
  }
  return result;
}
