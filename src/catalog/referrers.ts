// Build-details referrers (tagtrail attach) into the catalog, through the OCI referrers tag
// schema: the tag sha256-<hex> holds an OCI index of the referrers of the manifest sha256:<hex>.
// Sync, the periodic reconcile and the webhook call followReferrersTag when they meet such a tag.
//
// Cost: a HEAD of the tag (sync has it from the crawl already); the tag's index is read only when
// its digest differs from the one last read for that repository and subject; each referrer
// manifest of our artifactType is read once per digest (content-addressed). The referrers API is
// not asked per manifest: on a large registry that is a request per image and crawl.
//
// The checks are those `tagtrail show` applies (referrers.ts in src/oci): the tag must hold an OCI
// index of referrers of that subject, not the subject itself nor its platform manifests (the
// GitLab.com quirks), and each referrer manifest must name the subject and carry our artifactType;
// what fails is left out with a warning.
import { InvalidInputError, NotFoundError, UnreadableManifestError } from '../errors.js';
import type { Manifest } from '../oci/manifest.js';
import { isValidDigest } from '../oci/reference.js';
import { BUILD_DETAILS_ARTIFACT_TYPE, artifactTypeOf, fallbackMismatch, referrerSubject } from '../oci/referrers.js';
import type { RegistryClient } from '../oci/registry.js';
import { type Limiter, unlimited } from './limit.js';
import type { ReferrerLinks, StoreReader } from './store.js';

/** At most this many referrer manifests are read from one referrers tag (the newest by the order listed last). */
const MAX_REFERRERS_PER_TAG = 64;

interface FollowOptions {
  client: RegistryClient;
  store: ReferrerLinks & Pick<StoreReader, 'getImage'>;
  registry: string;
  limit?: Limiter;
  /** Called after each manifest read from the registry. */
  onRead?: () => void;
  /** A referrer or referrers tag that was left out, and why (no secrets: names and digests only). */
  onWarning?: (message: string) => void;
}

export type FollowOutcome = 'unchanged' | 'read' | 'gone' | 'skipped';

/** The subject digest a referrers tag stands for: sha256-<64 hex> → sha256:<64 hex>; undefined otherwise. */
export function subjectOfReferrersTag(tag: string): string | undefined {
  const m = /^sha256-([a-f0-9]{64})$/.exec(tag);
  return m ? `sha256:${m[1]}` : undefined;
}

/**
 * Brings the catalog's referrers of one subject in `repository` up to date with its referrers
 * tag. `digest` is the tag's digest when the caller has it from a HEAD (sync); without it the tag
 * is HEADed here (the webhook's delete events). `pushed` is the digest a push event named, read
 * as it is: distribution notifies of a manifest push before it links the tag to it, so a HEAD at
 * that moment finds the tag's previous index, or none. Distribution delivers an endpoint's events
 * in order; the periodic reconcile settles any that arrive otherwise.
 */
export async function followReferrersTag(o: FollowOptions, repository: string, tag: string, digest?: string, pushed?: string): Promise<FollowOutcome> {
  const subject = subjectOfReferrersTag(tag);
  // sha512-<hex> tags cut the hex to 64 characters: the subject cannot be told from the tag.
  if (subject === undefined) return 'skipped';
  const { client, store, registry } = o;
  const limit = o.limit ?? unlimited;
  const warn = (message: string): void => o.onWarning?.(message);
  let current = digest ?? pushed;
  if (current === undefined) {
    const head = await limit(() => client.headManifest({ registry, repository, tag }));
    if (!head) {
      await store.setReferrersTag(repository, subject, null, []);
      return 'gone';
    }
    current = head.digest;
  }
  if (!isValidDigest(current)) return 'skipped';
  if ((await store.referrersTagDigest(repository, subject)) === current) return 'unchanged';

  let index: Manifest;
  try {
    index = await limit(() => client.getManifest({ registry, repository, digest: current }));
    o.onRead?.();
  } catch (err) {
    if (err instanceof NotFoundError) return 'skipped'; // moved or deleted since: the next event or crawl has it
    if (err instanceof InvalidInputError || err instanceof UnreadableManifestError) {
      warn(`the referrers tag ${repository}:${tag} does not hold a manifest tagtrail can read (${err.message}); ignored`);
      await store.setReferrersTag(repository, subject, current, []);
      return 'read';
    }
    throw err;
  }
  const stored = await store.getImage(subject);
  const why = fallbackMismatch(index, { digest: subject, childDigests: stored?.children.map((c) => c.digest) ?? [] });
  if (why !== undefined || index.kind !== 'index') {
    warn(`the referrers tag ${repository}:${tag} is not usable: ${why ?? 'not an index'}; ignored`);
    await store.setReferrersTag(repository, subject, current, []);
    return 'read';
  }
  const ours = index.manifests.filter((d) => d.artifactType === BUILD_DETAILS_ARTIFACT_TYPE && isValidDigest(d.digest));
  if (ours.length > MAX_REFERRERS_PER_TAG) warn(`the referrers tag ${repository}:${tag} lists ${ours.length} build-details referrers; the last ${MAX_REFERRERS_PER_TAG} are read`);
  const linked: string[] = [];
  for (const d of ours.slice(-MAX_REFERRERS_PER_TAG)) {
    if (linked.includes(d.digest)) continue;
    const known = await store.referrerSubject(d.digest);
    if (known !== null) {
      if (known === subject) linked.push(d.digest);
      else warn(`the referrer ${repository}@${d.digest} does not name ${subject} as its subject (it names ${known}); ignored`);
      continue;
    }
    let m: Manifest;
    try {
      m = await limit(() => client.getManifest({ registry, repository, digest: d.digest }));
      o.onRead?.();
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof InvalidInputError || err instanceof UnreadableManifestError) {
        warn(`the referrer ${repository}@${d.digest} is listed in ${tag} but cannot be read; ignored`);
        continue;
      }
      throw err;
    }
    // Believe the manifest, not the list: it must name this subject and be of our type.
    if (referrerSubject(m) !== subject || artifactTypeOf(m) !== BUILD_DETAILS_ARTIFACT_TYPE) {
      warn(`the referrer ${repository}@${d.digest} does not name ${subject} as its subject with artifactType ${BUILD_DETAILS_ARTIFACT_TYPE}; ignored`);
      continue;
    }
    await store.putReferrer({ digest: m.digest, subjectDigest: subject, artifactType: BUILD_DETAILS_ARTIFACT_TYPE, annotations: m.annotations });
    linked.push(m.digest);
  }
  await store.setReferrersTag(repository, subject, current, linked);
  return 'read';
}

/** After a complete tag listing: subjects whose referrers tag is no longer listed lose its links. */
export async function retireReferrersTags(store: ReferrerLinks, repository: string, listed: ReadonlySet<string>): Promise<number> {
  let n = 0;
  for (const subject of await store.referrersTagSubjects(repository)) {
    if (listed.has(subject)) continue;
    await store.setReferrersTag(repository, subject, null, []);
    n++;
  }
  return n;
}
