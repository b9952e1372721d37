// Referrers of a manifest (OCI 1.1): manifests whose `subject` names it. Read through the
// registry's referrers API where it has one, else through the referrers tag: a tag
// `<alg>-<hex>` holding an OCI index of referrer descriptors, which clients keep up to date
// themselves.
//
// Some registries answer the referrers tag wrongly. GitLab.com's registry resolves the tag
// `sha256-<hex>` to the manifest `sha256:<hex>`, the subject itself: read as a referrers index,
// an index subject would list its own platform manifests as referrers. So what comes back from
// the referrers tag is checked before it is believed, and a mismatch means "no usable referrers tag".
import { ConflictError, InvalidInputError, NotFoundError, RegistryError, UnreadableManifestError } from '../errors.js';
import type { Annotations } from './annotations.js';
import { sha256Digest } from './digest.js';
import { type Descriptor, type Manifest, parseManifest, serialize } from './manifest.js';
import { OCI_INDEX, OCI_MANIFEST } from './mediatypes.js';
import type { Reference } from './reference.js';
import { type RegistryClient, isTagBeingWritten } from './registry.js';
import { sleep } from '../time.js';

/** Our artifactType: a manifest of build details attached to an image. */
export const BUILD_DETAILS_ARTIFACT_TYPE = 'application/vnd.tagtrail.build.v1+json';

/** The empty JSON blob `{}` the OCI image spec names for artifacts without a config. */
export const EMPTY_BLOB = new Uint8Array([0x7b, 0x7d]);
export const EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
export const EMPTY_DESCRIPTOR: Descriptor = { mediaType: EMPTY_MEDIA_TYPE, digest: EMPTY_DIGEST, size: 2 };

export type ReferrersMode = 'auto' | 'always' | 'never';
/** How referrers are listed: the registry's API, or the referrers tag (`fallback-tag`, the JSON value scripts read). */
export type ReferrersPath = 'api' | 'fallback-tag';

/** The referrers tag of a digest: <alg>:<hex> → <alg>-<hex>, the algorithm cut to 32 characters and the hex to 64. */
export function referrersTag(digest: string): string {
  const colon = digest.indexOf(':');
  return `${digest.slice(0, colon).slice(0, 32)}-${digest.slice(colon + 1).slice(0, 64)}`;
}

/**
 * True for a referrers tag (sha256-<64 hex>, sha512-<64 hex>): a list of
 * another manifest's referrers that clients keep, not an image anyone tagged. cosign's
 * sha256-<hex>.sig and .att tags are not matched.
 */
export function isReferrersTag(tag: string): boolean {
  return /^sha(256|512)-[a-f0-9]{64}$/.test(tag);
}

/** What the referrers tag holds, when it is usable. */
export interface ReferrersTagIndex {
  /** The tag's manifest, or undefined when the tag does not exist. */
  readonly manifest?: Manifest;
  readonly manifests: readonly Descriptor[];
}

type ReferrersTagRead =
  | { readonly usable: true; readonly index: ReferrersTagIndex }
  | { readonly usable: false; readonly reason: string };

/**
 * Why a manifest read from the referrers tag cannot be a referrers index of `subject`, or
 * undefined when it can be. `subjectChildren` are the digests listed by the subject when it is an
 * index: a "referrers index" listing them is the subject read back under another name.
 */
export function referrersTagMismatch(m: Manifest, subject: { digest: string; childDigests?: readonly string[] }): string | undefined {
  if (m.digest === subject.digest) return `the registry resolved the tag ${referrersTag(subject.digest)} to the subject ${subject.digest} itself`;
  if (m.kind !== 'index' || m.mediaType !== OCI_INDEX) return `the tag ${referrersTag(subject.digest)} holds a ${m.mediaType}, not an OCI index of referrers`;
  const children = new Set(subject.childDigests ?? []);
  if (m.manifests.length > 0 && children.size > 0 && m.manifests.every((d) => children.has(d.digest))) {
    return `the tag ${referrersTag(subject.digest)} lists the subject's own platform manifests, not referrers`;
  }
  if (m.manifests.some((d) => d.digest === subject.digest)) return `the tag ${referrersTag(subject.digest)} lists the subject itself as its referrer`;
  return undefined;
}

// A 500 on the referrers tag, which several clients write at once by design: read again.
const TAG_READ_ATTEMPTS = 4;

export async function readReferrersTag(client: RegistryClient, subject: Reference & { digest: string }, childDigests: readonly string[] = []): Promise<ReferrersTagRead> {
  const tagRef: Reference = { registry: subject.registry, repository: subject.repository, tag: referrersTag(subject.digest) };
  let m: Manifest;
  for (let attempt = 1; ; attempt++) {
    try {
      m = await client.getManifest(tagRef);
      break;
    } catch (err) {
      if (err instanceof NotFoundError) return { usable: true, index: { manifests: [] } };
      if (err instanceof InvalidInputError || err instanceof UnreadableManifestError) return { usable: false, reason: `the tag ${tagRef.tag} does not hold a manifest tagtrail can read (${err.message})` };
      if (!isTagBeingWritten(err) || attempt >= TAG_READ_ATTEMPTS) throw err;
      await sleep(100 * attempt);
    }
  }
  const why = referrersTagMismatch(m, { digest: subject.digest, childDigests });
  if (why) return { usable: false, reason: why };
  return { usable: true, index: { manifest: m, manifests: m.kind === 'index' ? m.manifests : [] } };
}

interface ReferrersList {
  readonly path: ReferrersPath | 'none';
  /** Descriptors of our artifactType (or all, when no type was asked for). */
  readonly manifests: readonly Descriptor[];
  /** The referrers tag's content as read, for a read-modify-write. */
  readonly tagIndex?: ReferrersTagIndex;
  /** Set when the referrers tag exists but is not a referrers index of this subject. */
  readonly tagUnusable?: string;
  readonly warnings: readonly string[];
}

/**
 * Lists the referrers of `subject` of one artifactType: the API first (unless mode is never),
 * then the referrers tag (unless mode is always). A referrers tag that does not hold a referrers
 * index of this subject gives no referrers and a warning, never wrong data.
 */
export async function listReferrers(
  client: RegistryClient,
  subject: Reference & { digest: string },
  opts: { artifactType?: string; mode?: ReferrersMode; childDigests?: readonly string[] } = {},
): Promise<ReferrersList> {
  const mode = opts.mode ?? 'auto';
  if (mode !== 'never') {
    const page = await client.listReferrers(subject.registry, subject.repository, subject.digest, opts.artifactType);
    if (page) return { path: 'api', manifests: page.manifests, warnings: [] };
    if (mode === 'always') {
      throw new RegistryError(`${subject.registry} has no referrers API (GET /v2/${subject.repository}/referrers/… gave 404)`, 404, [], {
        hint: 'leave out --referrers-api always: tagtrail then keeps the referrers in the sha256-<hex> tag, as the OCI spec says for such registries',
      });
    }
  }
  const read = await readReferrersTag(client, subject, opts.childDigests);
  if (!read.usable) {
    return { path: 'none', manifests: [], tagUnusable: read.reason, warnings: [`the referrers tag of ${subject.repository}@${subject.digest} is not usable: ${read.reason}; its content was ignored`] };
  }
  const all = read.index.manifests;
  const manifests = opts.artifactType === undefined ? all : all.filter((d) => d.artifactType === opts.artifactType);
  return { path: read.index.manifest ? 'fallback-tag' : 'none', manifests, tagIndex: read.index, warnings: [] };
}

/** The descriptor of a referrer as the referrers tag lists it: artifactType and annotations pulled up. */
export function referrerDescriptor(m: { mediaType: string; digest: string; bytes: Uint8Array; artifactType?: string; annotations: Annotations }): Descriptor {
  const d: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength };
  if (m.artifactType) d.artifactType = m.artifactType;
  if (Object.keys(m.annotations).length > 0) d.annotations = { ...m.annotations };
  return d;
}

/**
 * Adds a referrer to the referrers tag, keeping every other entry (deduplicated by digest). Just
 * before the PUT it checks that the tag still holds what was read: if another writer changed it,
 * it stops with a conflict rather than drop their referrer. Returns the index's digest, or
 * undefined when the referrer was listed already and nothing was written.
 */
export async function addToReferrersTag(client: RegistryClient, subject: Reference & { digest: string }, read: ReferrersTagIndex, referrer: Descriptor): Promise<string | undefined> {
  if (read.manifests.some((d) => d.digest === referrer.digest)) return undefined;
  const seen = new Set<string>();
  const kept: Descriptor[] = [];
  for (const d of read.manifests) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    kept.push(d);
  }
  kept.push(referrer);
  const base = read.manifest?.json ?? {};
  const json: Record<string, unknown> = { schemaVersion: 2, mediaType: OCI_INDEX, ...base, manifests: kept };
  const bytes = serialize(json);
  parseManifest(bytes, OCI_INDEX);
  const tag = referrersTag(subject.digest);
  let now: Awaited<ReturnType<RegistryClient['headManifest']>>;
  try {
    now = await client.headManifest({ registry: subject.registry, repository: subject.repository, tag });
  } catch (err) {
    if (!isTagBeingWritten(err)) throw err;
    throw new ConflictError(`the referrers tag ${subject.repository}:${tag} is being written by another client`, { hint: 'run attach again in a moment' });
  }
  if (now?.digest !== read.manifest?.digest) {
    throw new ConflictError(
      `the referrers tag ${subject.repository}:${tag} changed while attaching: it was ${read.manifest?.digest ?? 'absent'} when read and is ${now?.digest ?? 'gone'} now`,
      { hint: 'another client added a referrer at the same time; run attach again (the referrer manifest is already stored and will be listed then)' },
    );
  }
  return client.putManifest(subject.registry, subject.repository, tag, bytes, OCI_INDEX);
}

/** An artifact manifest of build details for `subject`. */
export function buildDetailsManifest(subject: Descriptor, annotations: Annotations): { bytes: Uint8Array; digest: string; json: Record<string, unknown> } {
  const json: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUILD_DETAILS_ARTIFACT_TYPE,
    config: EMPTY_DESCRIPTOR,
    layers: [EMPTY_DESCRIPTOR],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { ...annotations },
  };
  const bytes = serialize(json);
  return { bytes, digest: sha256Digest(bytes), json };
}

/** A referrer manifest read back: is it ours, about this subject? */
export function referrerSubject(m: Manifest): string | undefined {
  const s = m.json.subject;
  if (typeof s !== 'object' || s === null) return undefined;
  const d = (s as { digest?: unknown }).digest;
  return typeof d === 'string' ? d : undefined;
}

export function artifactTypeOf(m: Manifest): string | undefined {
  const a = m.json.artifactType;
  if (typeof a === 'string') return a;
  return m.kind === 'image' ? m.config.mediaType : undefined;
}

/** What hangs off a manifest's digest: referrers (API or referrers tag) and cosign's tags. */
interface DigestDependents {
  /** Referrers listed by the registry's referrers API: "digest (artifactType)". */
  readonly referrers: readonly string[];
  /** Tags named after the digest: the referrers tag sha256-<hex>, cosign's sha256-<hex>.sig/.att/.sbom. */
  readonly tags: readonly string[];
  /** Lookups the registry refused, so what they would list is unknown. */
  readonly unchecked: readonly string[];
}

/** cosign keeps signatures, attestations and SBOMs under tags named after the digest. */
const COSIGN_SUFFIXES = ['.sig', '.att', '.sbom'];

/**
 * Finds what other manifests or tags name `subject` by digest, at the cost of one referrers API
 * request and one tag list (a tag list page holds up to 1,000 tags), sent at the same time.
 * Anything found stays with that digest when the manifest is rewritten.
 */
export async function findDigestDependents(client: RegistryClient, subject: Reference & { digest: string }, signal?: AbortSignal): Promise<DigestDependents> {
  const own = referrersTag(subject.digest);
  const wanted = new Set([own, ...COSIGN_SUFFIXES.map((s) => `${own}${s}`)]);
  const [api, list] = await Promise.allSettled([
    client.listReferrers(subject.registry, subject.repository, subject.digest, undefined, signal),
    (async () => {
      const tags: string[] = [];
      for await (const tag of client.listTags(subject.registry, subject.repository, 1000, signal)) if (wanted.has(tag)) tags.push(tag);
      return tags;
    })(),
  ]);
  // A refusal (4xx) leaves that lookup unchecked; anything else fails the run, the referrers API's first.
  // Some registries answer the referrers API with 400 or 405 rather than 404: no API, then.
  const refused = (r: PromiseSettledResult<unknown>): RegistryError | undefined => {
    if (r.status === 'fulfilled') return undefined;
    if (!(r.reason instanceof RegistryError) || r.reason.status >= 500) throw r.reason;
    return r.reason;
  };
  const apiRefused = refused(api);
  const listRefused = refused(list);
  const unchecked = [...(apiRefused ? [`the referrers API (HTTP ${apiRefused.status})`] : []), ...(listRefused ? [`the tag list (HTTP ${listRefused.status})`] : [])];
  const referrers = api.status === 'fulfilled' ? (api.value?.manifests ?? []).map((d) => (d.artifactType ? `${d.digest} (${d.artifactType})` : d.digest)) : [];
  const tags = list.status === 'fulfilled' ? list.value : [];
  return { referrers, tags: tags.sort(), unchecked };
}
