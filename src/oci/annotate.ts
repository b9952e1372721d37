// Writes annotations into an image's manifests in place: the manifest only, never a blob.
// For an index, the changed children are PUT by digest first and the index last, so the tag never
// points at a child or at a manifest that does not exist yet.
import { ConflictError } from '../errors.js';
import {
  type AnnotationChanges,
  type AnnotationDiff,
  type Annotations,
  applyAnnotationChanges,
  diffAnnotations,
  emptyAnnotations,
  isEmptyDiff,
  validateAnnotations,
} from './annotations.js';
import { readConfigLabels } from './config.js';
import { sha256Digest } from './digest.js';
import {
  type Descriptor,
  type Manifest,
  type PlatformFilter,
  REFERENCE_DIGEST,
  formatPlatform,
  isAttestationDescriptor,
  isDockerMediaType,
  jsonToOci,
  jsonWithAnnotations,
  parseManifest,
  platformMatches,
  serialize,
} from './manifest.js';
import { isImageManifestMediaType } from './mediatypes.js';
import { type Reference, formatReference, withDigest } from './reference.js';
import { type ManifestHead, type RegistryClient, isTagBeingWritten } from './registry.js';
import { sleep } from '../time.js';

export interface AnnotateOptions {
  readonly changes: AnnotationChanges;
  /** Annotate only the children of an index on these platforms (the index itself always). */
  readonly platforms?: readonly PlatformFilter[];
  readonly toOci?: boolean;
  readonly dryRun?: boolean;
  /** Children fetched and written at once. */
  readonly concurrency?: number;
  /** The least wait between writing the tag and reading it back (default 250 ms). */
  readonly settleMs?: number;
  /**
   * Read the tag back after writing it (default true), so a concurrent writer that replaced
   * our result is reported (exit 3) rather than lost silently. false saves that request and the
   * wait: the registry request floor of ping, GET, race-check HEAD and PUT.
   */
  readonly verify?: boolean;
  /**
   * --from-labels: read each image manifest's config blob and map its labels to annotations with
   * this function. They fill only keys that the changes do not set and the manifest lacks; an
   * index takes the values all its annotated children agree on.
   */
  readonly fromLabels?: (labels: Annotations) => Annotations;
  /**
   * Decides the changes from the annotations the image carries now (the top manifest's, read
   * before anything is written); it may also throw to stop before any write. Without it,
   * `changes` applies as given.
   */
  readonly changesFor?: (current: Annotations) => AnnotationChanges;
}

/** The changes plus label values, which rank below every explicit or CI value. */
function withLabels(changes: AnnotationChanges, fromLabels: Annotations | undefined): AnnotationChanges {
  if (!fromLabels) return changes;
  const removed = new Set(changes.remove);
  const setIfAbsent = emptyAnnotations();
  for (const [k, v] of Object.entries(fromLabels)) if (!Object.prototype.hasOwnProperty.call(changes.set, k) && !removed.has(k)) setIfAbsent[k] = v;
  // The changes' own set-if-absent values (the run's creation time) yield to the build's label.
  for (const [k, v] of Object.entries(changes.setIfAbsent ?? {})) if (!(k in setIfAbsent)) setIfAbsent[k] = v;
  return { ...changes, setIfAbsent };
}

/** The label values every child agrees on. */
function commonLabels(all: readonly (Annotations | undefined)[]): Annotations | undefined {
  const present = all.filter((a): a is Annotations => a !== undefined);
  if (present.length === 0) return undefined;
  const [first, ...rest] = present as [Annotations, ...Annotations[]];
  const out = emptyAnnotations();
  for (const [k, v] of Object.entries(first)) if (rest.every((a) => a[k] === v)) out[k] = v;
  return out;
}

const DEFAULT_SETTLE_MS = 250;
const MAX_SETTLE_MS = 2_000;

export interface ManifestOutcome {
  /** "index" for the index itself, else os/arch[/variant]. */
  readonly platform: string;
  readonly mediaType: string;
  readonly before: string;
  readonly after: string;
  readonly diff: AnnotationDiff;
  readonly converted: boolean;
}

export interface AnnotateResult {
  readonly image: string;
  readonly repository: string;
  readonly registry: string;
  readonly tag?: string;
  readonly changed: boolean;
  readonly dryRun: boolean;
  readonly before: string;
  readonly after: string;
  readonly mediaType: string;
  readonly manifests: readonly ManifestOutcome[];
  /** The top-level manifest's annotations after the change. */
  readonly annotations: Annotations;
}

interface Rewritten {
  readonly json: Record<string, unknown>;
  readonly bytes: Uint8Array;
  readonly digest: string;
  readonly mediaType: string;
  readonly diff: AnnotationDiff;
  readonly converted: boolean;
  readonly changed: boolean;
  readonly annotations: Annotations;
}

function rewrite(m: Manifest, changes: AnnotationChanges, toOci: boolean, extra?: (json: Record<string, unknown>) => Record<string, unknown>): Rewritten {
  const annotations = applyAnnotationChanges(m.annotations, changes);
  validateAnnotations(annotations);
  const diff = diffAnnotations(m.annotations, annotations);
  const convert = toOci && isDockerMediaType(m.mediaType);
  let json = jsonWithAnnotations(m.json, annotations);
  if (convert) json = jsonToOci(json);
  if (extra) json = extra(json);
  // Descriptor updates (extra) always change an index; otherwise only a diff or a conversion does.
  if (isEmptyDiff(diff) && !convert && !extra) {
    // Nothing to change: keep the registry's bytes exactly, so the digest stays.
    return { json: m.json, bytes: m.bytes, digest: m.digest, mediaType: m.mediaType, diff, converted: false, changed: false, annotations };
  }
  const bytes = serialize(json);
  const mediaType = typeof json.mediaType === 'string' ? json.mediaType : m.mediaType;
  return { json, bytes, digest: sha256Digest(bytes), mediaType, diff, converted: convert, changed: true, annotations };
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  });
  await Promise.all(workers);
  return out;
}

function selected(d: Descriptor, platforms: readonly PlatformFilter[] | undefined): boolean {
  if (!isImageManifestMediaType(d.mediaType) || isAttestationDescriptor(d)) return false;
  if (!platforms || platforms.length === 0) return true;
  return platforms.some((f) => platformMatches(d.platform, f));
}

const READ_BACK_ATTEMPTS = 4;

/** The manifest to annotate; a tag caught mid-write by another client (500) is read again. */
async function readTop(client: RegistryClient, ref: Reference): Promise<Manifest> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.getManifest(ref);
    } catch (err) {
      if (ref.tag === undefined || !isTagBeingWritten(err) || attempt >= READ_BACK_ATTEMPTS) throw err;
      await sleep(100 * attempt);
    }
  }
}

/** HEAD of a tag just written; a 500 while another client writes it too is read again. */
async function readBack(client: RegistryClient, ref: Reference): Promise<ManifestHead | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.headManifest(ref);
    } catch (err) {
      if (!isTagBeingWritten(err)) throw err;
      if (attempt >= READ_BACK_ATTEMPTS) {
        throw new ConflictError(`${ref.repository}:${ref.tag} kept being written by another client right after annotating; whether our result stayed is unknown`, {
          hint: 'another writer is pushing the tag; run annotate again once it is done',
        });
      }
      await sleep(100 * attempt);
    }
  }
}

export async function annotateImage(client: RegistryClient, ref: Reference, opts: AnnotateOptions): Promise<AnnotateResult> {
  const toOci = opts.toOci ?? false;
  if (!opts.dryRun) client.intendToWrite(ref.registry, ref.repository);
  const top = await readTop(client, ref);
  const changes = opts.changesFor ? opts.changesFor(top.annotations) : opts.changes;
  const outcomes: ManifestOutcome[] = [];
  let result: Rewritten;

  const labelsOf = async (m: Manifest): Promise<Annotations | undefined> =>
    opts.fromLabels && m.kind === 'image' ? opts.fromLabels(await readConfigLabels(client, ref.registry, ref.repository, m)) : undefined;

  if (top.kind === 'image') {
    result = rewrite(top, withLabels(changes, await labelsOf(top)), toOci);
  } else {
    // Children first: fetch and rewrite them all, a few at a time, so that bad input found in
    // any of them stops the run before the first write; then PUT the changed ones by digest.
    const indexed = top.manifests.map((d, i) => ({ d, i })).filter(({ d }) => selected(d, opts.platforms));
    const concurrency = opts.concurrency ?? 4;
    const fetched = await mapLimit(indexed, concurrency, async ({ d }) => {
      const child = await client.getManifest(withDigest(ref, d.digest));
      return { d, child, labels: await labelsOf(child) };
    });
    const rewritten = fetched.map(({ d, child, labels }) => ({ d, r: rewrite(child, withLabels(changes, labels), toOci) }));
    if (!opts.dryRun) {
      await mapLimit(
        rewritten.filter(({ r }) => r.changed),
        concurrency,
        ({ r }) => client.putManifest(ref.registry, ref.repository, r.digest, r.bytes, r.mediaType),
      );
    }
    const moved = new Map<string, Rewritten>();
    for (const { d, r } of rewritten) {
      outcomes.push({ platform: formatPlatform(d.platform), mediaType: r.mediaType, before: d.digest, after: r.digest, diff: r.diff, converted: r.converted });
      if (r.changed) moved.set(d.digest, r);
    }
    const updateDescriptors = (json: Record<string, unknown>): Record<string, unknown> => {
      const list = Array.isArray(json.manifests) ? (json.manifests as Descriptor[]) : [];
      return {
        ...json,
        manifests: list.map((d) => {
          const r = moved.get(d.digest);
          let out: Descriptor = r ? { ...d, mediaType: r.mediaType, digest: r.digest, size: r.bytes.byteLength } : d;
          // Attestation manifests name the manifest they describe; follow its new digest.
          const refDigest = d.annotations?.[REFERENCE_DIGEST];
          const target = refDigest ? moved.get(refDigest) : undefined;
          if (target) out = { ...out, annotations: { ...d.annotations, [REFERENCE_DIGEST]: target.digest } };
          return out;
        }),
      };
    };
    const indexChanges = withLabels(changes, commonLabels(fetched.map((f) => f.labels)));
    result = rewrite(top, indexChanges, toOci, moved.size > 0 ? updateDescriptors : undefined);
  }
  outcomes.unshift({
    platform: top.kind === 'index' ? 'index' : 'manifest',
    mediaType: result.mediaType,
    before: top.digest,
    after: result.digest,
    diff: result.diff,
    converted: result.converted,
  });

  if (result.changed && !opts.dryRun) {
    // Check that what we send parses as what we mean to send.
    parseManifest(result.bytes, result.mediaType);
    if (ref.tag !== undefined) {
      // Race check: if someone moved the tag since our read, leave their manifest in place.
      const expected = ref.digest ?? top.digest;
      let now: ManifestHead | undefined;
      try {
        now = await client.headManifest({ registry: ref.registry, repository: ref.repository, tag: ref.tag });
      } catch (err) {
        if (!isTagBeingWritten(err)) throw err;
        throw new ConflictError(`${ref.repository}:${ref.tag} is being written by another client right now (the registry answered 500 to reading it); nothing was changed`, {
          hint: 'someone is pushing the tag at this moment; run annotate again to annotate what it holds then',
        });
      }
      if (now?.digest !== expected) {
        throw new ConflictError(
          `${ref.repository}:${ref.tag} moved while annotating: it was ${expected} when read and is ${now?.digest ?? 'gone'} now; nothing was changed`,
          { hint: 'someone pushed the tag in the meantime; run annotate again to annotate the new image' },
        );
      }
      const putStarted = Date.now();
      await client.putManifest(ref.registry, ref.repository, ref.tag, result.bytes, result.mediaType);
      if (opts.verify !== false) {
        // Registries have no conditional PUT, so a writer whose race check passed at the same
        // moment as ours may replace our result a moment later. Give such a writer time to land
        // (twice our own PUT, at least 250 ms, at most 2 s), then read the tag once more: a run
        // that says it annotated the tag must have left it on its result, or say that it did not.
        await sleep(Math.min(MAX_SETTLE_MS, Math.max(opts.settleMs ?? DEFAULT_SETTLE_MS, 2 * (Date.now() - putStarted))));
        const written = await readBack(client, { registry: ref.registry, repository: ref.repository, tag: ref.tag });
        if (written?.digest !== result.digest) {
          throw new ConflictError(
            `${ref.repository}:${ref.tag} was replaced right after annotating: tagtrail wrote ${result.digest}, and the tag is ${written?.digest ?? 'gone'} now`,
            { hint: `another writer pushed or annotated the tag at the same time; ${result.digest} is still in the registry, untagged; run annotate again to annotate what the tag holds now` },
          );
        }
      }
    } else {
      await client.putManifest(ref.registry, ref.repository, result.digest, result.bytes, result.mediaType);
    }
  }

  return {
    image: formatReference(ref),
    repository: ref.repository,
    registry: ref.registry,
    ...(ref.tag !== undefined ? { tag: ref.tag } : {}),
    changed: result.changed,
    dryRun: opts.dryRun ?? false,
    before: top.digest,
    after: result.digest,
    mediaType: result.mediaType,
    manifests: outcomes,
    annotations: result.annotations,
  };
}
