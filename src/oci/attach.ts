// Attaches build details to an image as an OCI 1.1 referrer: an artifact manifest whose
// `subject` is the image. The image's manifest, and so its digest, never changes.
//
// What is written: the empty config blob `{}` (when the repository lacks it), the artifact
// manifest by digest, and, unless the registry has the referrers API, the referrers tag
// `sha256-<hex>` with the new referrer added to what it listed before.
import { ConflictError, RegistryError } from '../errors.js';
import { CREATED_KEY } from '../gitlab/ci.js';
import { type AnnotationChanges, type Annotations, applyAnnotationChanges, emptyAnnotations, validateAnnotations } from './annotations.js';
import type { Descriptor, Manifest } from './manifest.js';
import { OCI_MANIFEST } from './mediatypes.js';
import {
  BUILD_DETAILS_ARTIFACT_TYPE,
  EMPTY_BLOB,
  EMPTY_DIGEST,
  type FallbackIndex,
  type ReferrersMode,
  type ReferrersPath,
  addToFallback,
  buildDetailsManifest,
  fallbackTag,
  listReferrers,
  readFallback,
  referrerDescriptor,
  referrerSubject,
  artifactTypeOf,
} from './referrers.js';
import { type Reference, formatReference, withDigest } from './reference.js';
import type { RegistryClient } from './registry.js';
import { sleep } from '../time.js';

export interface AttachOptions {
  readonly changes: AnnotationChanges;
  /** The time of the run: org.opencontainers.image.created when the set has none. */
  readonly now: Date;
  readonly dryRun?: boolean;
  /** auto: the referrers API where the registry has it, else the tag schema. always: the API or fail. never: the tag schema. */
  readonly mode?: ReferrersMode;
  /** The least wait between writing the referrers tag and reading it back (default 250 ms). */
  readonly settleMs?: number;
  /**
   * Read the referrers tag back after writing it (default true), and merge again if a concurrent
   * writer dropped our entry. false saves that request and the wait.
   */
  readonly verify?: boolean;
  /**
   * Called with the build-details referrers already there when none has the same details: returns
   * one of them to stand for this run (nothing is written), or undefined to attach; it may throw
   * to stop before any write.
   */
  readonly existingReferrers?: (found: readonly Descriptor[]) => Descriptor | undefined;
}

const DEFAULT_SETTLE_MS = 250;
const MAX_SETTLE_MS = 2_000;
/** Read-modify-write rounds of the referrers tag before giving up with a conflict. */
const MAX_MERGES = 4;

async function readUsable(client: RegistryClient, subject: Reference & { digest: string }, childDigests: readonly string[], referrer: string): Promise<FallbackIndex> {
  const r = await readFallback(client, subject, childDigests);
  if (!r.usable) {
    throw new RegistryError(`the referrer ${referrer} is stored, but the referrers tag of ${subject.repository}@${subject.digest} cannot be updated: ${r.reason}`, 200, [], {
      hint: 'the registry did not index the referrer itself (no OCI-Subject header) and its sha256-<hex> tag does not hold a referrers index; clients of the tag schema will not find this referrer',
    });
  }
  return r.index;
}

/**
 * Adds the referrer to the sha256-<hex> tag and makes sure it stays there. A registry has no
 * conditional write, so two clients adding referrers at once can each read the same list and the
 * later PUT would drop the earlier one's entry. So: race-check HEAD right before the PUT (the tag
 * changed since the read: read and merge again), and after the PUT wait a moment (twice the PUT's
 * time, 250 ms to 2 s) and read the tag back: if our entry is gone, merge again. Others' entries
 * are never removed. Returns the digest of the last index written, if any.
 */
async function mergeIntoFallback(
  client: RegistryClient,
  subject: Reference & { digest: string },
  childDigests: readonly string[],
  first: FallbackIndex | undefined,
  desc: Descriptor,
  referrer: string,
  settleMs: number | undefined,
  verify: boolean,
): Promise<string | undefined> {
  let read = first ?? (await readUsable(client, subject, childDigests, referrer));
  let written: string | undefined;
  for (let round = 1; ; round++) {
    const started = Date.now();
    try {
      written = (await addToFallback(client, subject, read, desc)) ?? written;
    } catch (err) {
      if (!(err instanceof ConflictError) || round >= MAX_MERGES) throw err;
      read = await readUsable(client, subject, childDigests, referrer);
      continue;
    }
    if (!verify) return written;
    await sleep(Math.min(MAX_SETTLE_MS, Math.max(settleMs ?? DEFAULT_SETTLE_MS, 2 * (Date.now() - started))));
    read = await readUsable(client, subject, childDigests, referrer);
    if (read.manifests.some((d) => d.digest === desc.digest)) return written;
    if (round >= MAX_MERGES) {
      throw new ConflictError(`the referrers tag ${subject.repository}:${fallbackTag(subject.digest)} kept being replaced by other writers; the referrer ${referrer} is stored but not listed there`, {
        hint: 'other clients are adding referrers to this image right now; run attach again in a moment (it then only adds the listing)',
      });
    }
  }
}

/** PUTs of the referrer manifest that the registry answered "blob unknown" to, before giving up. */
const MAX_BLOB_UNKNOWN_PUTS = 4;

function isManifestBlobUnknown(err: unknown): boolean {
  return err instanceof RegistryError && err.registryCodes.includes('MANIFEST_BLOB_UNKNOWN');
}

/**
 * Uploads the empty config blob when missing, then PUTs the referrer manifest. Several clients
 * uploading that same blob at once race inside distribution: one can be told the blob is there
 * and then have its manifest refused with MANIFEST_BLOB_UNKNOWN. So on that answer, look for the
 * blob again (upload it if it is really gone), wait a moment and PUT again, a bounded number of times.
 */
async function putWithEmptyBlob(client: RegistryClient, ref: Reference, digest: string, bytes: Uint8Array): Promise<{ digest: string; ociSubject?: string }> {
  for (let attempt = 1; ; attempt++) {
    await client.uploadBlob(ref.registry, ref.repository, EMPTY_BLOB, EMPTY_DIGEST);
    try {
      return await client.putManifestWithResult(ref.registry, ref.repository, digest, bytes, OCI_MANIFEST);
    } catch (err) {
      if (!isManifestBlobUnknown(err) || attempt >= MAX_BLOB_UNKNOWN_PUTS) throw err;
      await sleep(100 * attempt);
    }
  }
}

export interface AttachResult {
  readonly image: string;
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  /** The image, unchanged. */
  readonly subject: { readonly digest: string; readonly mediaType: string; readonly size: number };
  /** The referrer manifest: written now, would be written (dry run), or found already there. */
  readonly referrer: string;
  readonly changed: boolean;
  readonly dryRun: boolean;
  /** How the referrer is (or would be) found: the registry's referrers API or the sha256-<hex> tag. */
  readonly path: ReferrersPath;
  /** The referrers tag and the digest of the index written to it, when one was written. */
  readonly fallbackTag?: { readonly tag: string; readonly digest: string };
  readonly annotations: Annotations;
  readonly warnings: readonly string[];
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The annotation set of the referrer: the build set, and the creation time. */
export function referrerAnnotations(changes: AnnotationChanges, now: Date): Annotations {
  const a = applyAnnotationChanges(emptyAnnotations(), changes);
  if (a[CREATED_KEY] === undefined && !changes.remove.includes(CREATED_KEY)) a[CREATED_KEY] = rfc3339(now);
  validateAnnotations(a);
  return a;
}

/** Same build details: every key equal, the creation time aside (a re-run at another moment is the same attachment). */
export function sameDetails(a: Annotations | undefined, b: Annotations): boolean {
  if (!a) return false;
  const keys = (x: Annotations) => Object.keys(x).filter((k) => k !== CREATED_KEY).sort();
  const ka = keys(a);
  const kb = keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** A referrer already there with the same details, checked on the manifest itself (subject, type, annotations). */
async function findSame(client: RegistryClient, subject: Reference & { digest: string }, candidates: readonly Descriptor[], want: Annotations): Promise<Manifest | undefined> {
  // Descriptors carry the annotations (the API and the tag schema both pull them up); fetch only
  // the ones that match, or that carry none to compare.
  const worth = candidates.filter((d) => d.annotations === undefined || sameDetails(d.annotations, want)).slice(0, 16);
  for (const d of worth) {
    let m: Manifest;
    try {
      m = await client.getManifest(withDigest(subject, d.digest));
    } catch (err) {
      if ((err as { code?: unknown }).code === 'NOT_FOUND') continue;
      throw err;
    }
    if (referrerSubject(m) === subject.digest && artifactTypeOf(m) === BUILD_DETAILS_ARTIFACT_TYPE && sameDetails(m.annotations, want)) return m;
  }
  return undefined;
}

export async function attachBuildDetails(client: RegistryClient, ref: Reference, opts: AttachOptions): Promise<AttachResult> {
  const mode = opts.mode ?? 'auto';
  const dryRun = opts.dryRun ?? false;
  const annotations = referrerAnnotations(opts.changes, opts.now);
  if (!dryRun) client.intendToWrite(ref.registry, ref.repository);

  const top = await client.getManifest(ref);
  const subject = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.byteLength };
  const subjectRef = { registry: ref.registry, repository: ref.repository, digest: top.digest };
  const childDigests = top.kind === 'index' ? top.manifests.map((d) => d.digest) : [];
  const warnings: string[] = [];

  const existing = await listReferrers(client, subjectRef, { artifactType: BUILD_DETAILS_ARTIFACT_TYPE, mode, childDigests });
  if (existing.fallbackUnusable !== undefined) {
    // Writing the tag now would replace whatever it holds with a list built from wrong data.
    throw new RegistryError(`cannot keep referrers for ${ref.repository}@${top.digest} on ${ref.registry}: ${existing.fallbackUnusable}; nothing was written`, 200, [], {
      hint: 'this registry has neither a referrers API nor a working sha256-<hex> referrers tag; stamp the build details into the manifest with `tagtrail annotate` (the digest changes) or at build time with `tagtrail flags`',
    });
  }
  const base = {
    image: formatReference(ref),
    registry: ref.registry,
    repository: ref.repository,
    ...(ref.tag !== undefined ? { tag: ref.tag } : {}),
    subject,
    dryRun,
  };

  const same = await findSame(client, subjectRef, existing.manifests, annotations);
  if (same) {
    return { ...base, referrer: same.digest, changed: false, path: existing.path === 'api' ? 'api' : 'fallback-tag', annotations: same.annotations, warnings };
  }

  const standIn = opts.existingReferrers?.(existing.manifests);
  if (standIn) {
    return { ...base, referrer: standIn.digest, changed: false, path: existing.path === 'api' ? 'api' : 'fallback-tag', annotations: standIn.annotations ?? emptyAnnotations(), warnings };
  }

  const artifact = buildDetailsManifest(subject, annotations);
  const predicted: ReferrersPath = existing.path === 'api' ? 'api' : 'fallback-tag';
  if (dryRun) return { ...base, referrer: artifact.digest, changed: true, path: predicted, annotations, warnings };

  const put = await putWithEmptyBlob(client, ref, artifact.digest, artifact.bytes);
  const apiConfirmed = put.ociSubject === subject.digest;
  if (put.ociSubject !== undefined && !apiConfirmed) {
    warnings.push(`the registry answered OCI-Subject ${put.ociSubject}, not the subject ${subject.digest}`);
  }
  if (mode === 'always' || (apiConfirmed && mode === 'auto')) {
    if (!apiConfirmed) warnings.push('the registry did not confirm the subject with an OCI-Subject header; the referrer is listed only if its referrers API indexes it');
    return { ...base, referrer: artifact.digest, changed: true, path: 'api', annotations, warnings };
  }

  // The tag schema: the registry does not index referrers itself (or mode never asks for the tag).
  const desc = referrerDescriptor({ mediaType: OCI_MANIFEST, digest: artifact.digest, bytes: artifact.bytes, artifactType: BUILD_DETAILS_ARTIFACT_TYPE, annotations });
  const indexDigest = await mergeIntoFallback(client, subjectRef, childDigests, existing.fallback, desc, artifact.digest, opts.settleMs, opts.verify !== false);
  return {
    ...base,
    referrer: artifact.digest,
    changed: true,
    path: 'fallback-tag',
    ...(indexDigest ? { fallbackTag: { tag: fallbackTag(subject.digest), digest: indexDigest } } : {}),
    annotations,
    warnings,
  };
}
