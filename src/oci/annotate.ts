// Writes annotations into an image's manifests in place: the manifest only, never a blob.
// For an index, the changed children are PUT by digest first and the index last, so the tag never
// points at a child or at a manifest that does not exist yet.
import { ConflictError, InvalidInputError, UnreadableManifestError, isTagtrailError } from '../errors.js';
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
  type IndexManifest,
  type Manifest,
  type PlatformFilter,
  REFERENCE_DIGEST,
  formatPlatform,
  isReferenceDescriptor,
  isDockerMediaType,
  jsonToOci,
  jsonWithAnnotations,
  parseManifest,
  platformMatches,
  serialize,
} from './manifest.js';
import { isImageManifestMediaType, isIndexMediaType } from './mediatypes.js';
import { findDigestDependents } from './referrers.js';
import { type Reference, formatReference, withDigest } from './reference.js';
import { type ManifestHead, type RegistryClient, isTagBeingWritten } from './registry.js';

interface AnnotateOptions {
  readonly changes: AnnotationChanges;
  /** Annotate only the children of an index on these platforms (the index itself always). */
  readonly platforms?: readonly PlatformFilter[];
  readonly toOci?: boolean;
  readonly dryRun?: boolean;
  /** Children fetched and written at once (default 8); with an index's children, their references are fetched alongside. */
  readonly concurrency?: number;
  /** The least wait between writing the tag and reading it back (default 250 ms). */
  readonly settleMs?: number;
  /**
   * Read the tag back after writing it (default true), so a concurrent writer that replaced
   * our result is reported (exit 3) rather than lost silently. false saves that request and the
   * wait: the registry request floor of GET, race-check HEAD and PUT.
   */
  readonly verify?: boolean;
  /**
   * --from-labels: read each image manifest's config blob and map its labels to annotations with
   * this function. They fill only keys that the changes do not set and the manifest lacks; an
   * index takes the values all its annotated children agree on.
   */
  readonly fromLabels?: (labels: Annotations) => Annotations;
  /** Annotate a manifest that carries a `subject` (an artifact) anyway; it then leaves its subject's referrers. */
  readonly force?: boolean;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

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
  /** Referrers and digest-named tags that stay with the old digest. */
  readonly warnings: readonly string[];
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

/** fn over items, at most `limit` at once; once `signal` aborts, no further item starts. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && signal?.aborted !== true) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  });
  await Promise.all(workers);
  return out;
}

function selected(d: Descriptor, platforms: readonly PlatformFilter[] | undefined): boolean {
  if (!isImageManifestMediaType(d.mediaType) || isReferenceDescriptor(d)) return false;
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

/** Indexes inside indexes are followed this deep (the top index is level 1); deeper is refused. */
const MAX_INDEX_NESTING = 4;

interface PlanContext {
  readonly client: RegistryClient;
  readonly ref: Reference;
  readonly opts: AnnotateOptions;
  readonly toOci: boolean;
  readonly labelsOf: (m: Manifest) => Promise<Annotations | undefined>;
  readonly outcomes: ManifestOutcome[];
  /**
   * Read the reference manifests of the selected children together with the children, rather
   * than after them once a child is known to change: set when the run writes anyway (the top
   * index changes), so that the reads cost no round trip of their own.
   */
  readonly readReferencesEarly: boolean;
}

/** Manifests read and written at once, by default: manifests are small, and each is one round trip. */
const DEFAULT_CONCURRENCY = 8;

/**
 * A rewritten manifest and the rewritten manifests below it, which must be written before it:
 * its children first, then the references whose `subject` names one of those children.
 */
interface Planned {
  readonly r: Rewritten;
  readonly labels: Annotations | undefined;
  readonly children: readonly Planned[];
  readonly references: readonly Planned[];
}

function subjectDigest(m: Manifest): string | undefined {
  const s = m.json.subject;
  return typeof s === 'object' && s !== null && typeof (s as { digest?: unknown }).digest === 'string' ? (s as { digest: string }).digest : undefined;
}

function isNestedIndex(d: Descriptor): boolean {
  return isIndexMediaType(d.mediaType) && !isReferenceDescriptor(d);
}

/**
 * A warning naming the referrers and digest-named tags (cosign) that a new digest leaves behind.
 * Only a warning: a look-up that fails says so, and never stops the write.
 */
async function dependentsWarning(client: RegistryClient, ref: Reference, digest: string, signal: AbortSignal): Promise<string[]> {
  let found: Awaited<ReturnType<typeof findDigestDependents>>;
  try {
    found = await findDigestDependents(client, { registry: ref.registry, repository: ref.repository, digest }, signal);
  } catch (err) {
    if (!isTagtrailError(err)) throw err;
    return [`could not check the referrers and digest-named tags of ${ref.repository}@${digest} (${err.message}); any there stay with the old digest`];
  }
  const named = [...found.referrers.map((r) => `referrer ${r}`), ...found.tags.map((t) => `tag ${t}`)];
  const out = found.unchecked.length > 0 ? [`could not check ${found.unchecked.join(' or ')} for referrers of ${ref.repository}@${digest}; any there stay with the old digest`] : [];
  if (named.length === 0) return out;
  return [
    ...out,
    `${ref.repository}@${digest} has ${named.join(', ')}; they stay with the old digest, and signatures there no longer match the tag once annotate gives it a new digest. To keep them, attach the build details with \`tagtrail attach\` instead: the digest then stays.`,
  ];
}

/**
 * Writes what sits below a planned index: children (each with what sits below it) before the
 * references that name them. The first write that fails stops the others, their retries included:
 * its error is the run's answer, and the run ends at once instead of after their retries.
 */
async function writeBelow(client: RegistryClient, ref: Reference, p: Planned, concurrency: number): Promise<void> {
  const stop = new AbortController();
  const put = async (q: Planned): Promise<void> => {
    await below(q);
    if (q.r.changed) await client.putManifest(ref.registry, ref.repository, q.r.digest, q.r.bytes, q.r.mediaType, { signal: stop.signal });
  };
  const below = async (q: Planned): Promise<void> => {
    await mapLimit(q.children, concurrency, put, stop.signal);
    await mapLimit(q.references, concurrency, put, stop.signal);
  };
  try {
    await below(p);
  } catch (err) {
    stop.abort(err);
    throw err;
  }
}

/**
 * Rewrites an index and what it lists, without writing: its platform manifests, indexes nested in
 * it (recursively, up to MAX_INDEX_NESTING levels), and reference manifests (attestations, builder
 * references) whose `subject` names a child that changed. The index's descriptors then follow
 * every new digest, and vnd.docker.reference.digest follows the child it names.
 */
async function planIndex(ctx: PlanContext, index: IndexManifest, level: number, where: string): Promise<Planned> {
  const { client, ref, opts, toOci } = ctx;
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const entries = index.manifests.map((d, i) => ({ d, i })).filter(({ d }) => selected(d, opts.platforms) || isNestedIndex(d));
  const isReferenceOf = (d: Descriptor, digests: { has(digest: string): boolean }): boolean =>
    isReferenceDescriptor(d) && isImageManifestMediaType(d.mediaType) && digests.has(d.annotations?.[REFERENCE_DIGEST] ?? '');
  const childDigests = new Set(entries.map(({ d }) => d.digest));
  const early = ctx.readReferencesEarly ? index.manifests.filter((d) => isReferenceOf(d, childDigests)) : [];
  const read = new Map<string, Promise<Manifest>>();
  const get = (digest: string): Promise<Manifest> => {
    let m = read.get(digest);
    if (!m) {
      m = client.getManifest(withDigest(ref, digest));
      read.set(digest, m);
    }
    return m;
  };
  // One round trip for the children, their config labels when asked for, and (early) their references.
  const [fetched] = await Promise.all([
    mapLimit(entries, concurrency, async ({ d, i }) => {
      const child = await get(d.digest);
      return { d, i, child, labels: child.kind === 'image' ? await ctx.labelsOf(child) : undefined };
    }),
    // A reference that cannot be read fails the run only if it is needed below.
    mapLimit(early, concurrency, (d) => get(d.digest).then(
      () => undefined,
      () => undefined,
    )),
  ]);
  const planned: { d: Descriptor; p: Planned }[] = [];
  for (const { d, i, child, labels } of fetched) {
    if (child.kind === 'index') {
      if (level >= MAX_INDEX_NESTING) {
        throw new UnreadableManifestError(`${where}manifests[${i}] (${d.digest}) is an index nested ${level + 1} levels deep; tagtrail follows nested indexes ${MAX_INDEX_NESTING} levels deep at most`, {
          hint: 'nothing was written; flatten the index (one level of platform manifests) and push it again',
        });
      }
      const p = await planIndex(ctx, child, level + 1, `${where}manifests[${i}] > `);
      planned.push({ d, p });
      ctx.outcomes.push({ platform: `${where}manifests[${i}] index`, mediaType: p.r.mediaType, before: d.digest, after: p.r.digest, diff: p.r.diff, converted: p.r.converted });
    } else {
      const r = rewrite(child, withLabels(opts.changes, labels), toOci);
      planned.push({ d, p: { r, labels, children: [], references: [] } });
      ctx.outcomes.push({ platform: `${where}${formatPlatform(d.platform)}`, mediaType: r.mediaType, before: d.digest, after: r.digest, diff: r.diff, converted: r.converted });
    }
  }
  const moved = new Map<string, Rewritten>();
  for (const { d, p } of planned) if (p.r.changed) moved.set(d.digest, p.r);

  // A reference manifest may name the child it describes in a `subject`, which must follow the
  // child's new digest; only references of a changed child can need it, so only they are read
  // (unless read early, above).
  const references = index.manifests.filter((d) => isReferenceOf(d, moved));
  const followed = await mapLimit(references, concurrency, async (d) => ({ d, m: await get(d.digest) }));
  const referenceWrites: Planned[] = [];
  for (const { d, m } of followed) {
    const target = moved.get(subjectDigest(m) ?? '');
    if (!target) continue;
    const withSubject = (json: Record<string, unknown>): Record<string, unknown> => ({
      ...json,
      subject: { ...(json.subject as Record<string, unknown>), mediaType: target.mediaType, digest: target.digest, size: target.bytes.byteLength },
    });
    const r = rewrite(m, { set: {}, remove: [] }, false, withSubject);
    moved.set(d.digest, r);
    referenceWrites.push({ r, labels: undefined, children: [], references: [] });
  }

  const updateDescriptors = (json: Record<string, unknown>): Record<string, unknown> => {
    const list = Array.isArray(json.manifests) ? (json.manifests as Descriptor[]) : [];
    return {
      ...json,
      manifests: list.map((d) => {
        const r = moved.get(d.digest);
        let out: Descriptor = r ? { ...d, mediaType: r.mediaType, digest: r.digest, size: r.bytes.byteLength } : d;
        // References name the manifest they describe; follow its new digest.
        const refDigest = d.annotations?.[REFERENCE_DIGEST];
        const target = refDigest ? moved.get(refDigest) : undefined;
        if (target) out = { ...out, annotations: { ...d.annotations, [REFERENCE_DIGEST]: target.digest } };
        return out;
      }),
    };
  };
  const labels = commonLabels(planned.map(({ p }) => p.labels));
  const r = rewrite(index, withLabels(opts.changes, labels), toOci, moved.size > 0 ? updateDescriptors : undefined);
  return { r, labels, children: planned.map(({ p }) => p), references: referenceWrites };
}

/**
 * Writes the rewritten manifests: what sits below an index first (children by digest, innermost
 * first), then the top manifest under the tag (or its digest). The race check of the tag goes out
 * only once everything below is written, right before the tag's PUT: a push to the tag that lands
 * while the children are written must be seen, so nothing may come between the check's answer and
 * the PUT. The warning look-ups run beside all this, and the PUT never waits for them.
 */
async function write(client: RegistryClient, ref: Reference, top: Manifest, result: Rewritten, plan: Planned | undefined, opts: AnnotateOptions): Promise<void> {
  // Check that what we send parses as what we mean to send.
  parseManifest(result.bytes, result.mediaType);
  if (plan) await writeBelow(client, ref, plan, opts.concurrency ?? DEFAULT_CONCURRENCY);
  if (ref.tag === undefined) {
    await client.putManifest(ref.registry, ref.repository, result.digest, result.bytes, result.mediaType);
    return;
  }
  const tagRef = { registry: ref.registry, repository: ref.repository, tag: ref.tag };
  await raceCheck(client, tagRef, ref.digest ?? top.digest);
  const putStarted = Date.now();
  await client.putManifest(ref.registry, ref.repository, ref.tag, result.bytes, result.mediaType);
  if (opts.verify === false) return;
  // Registries have no conditional PUT, so a writer whose race check passed at the same
  // moment as ours may replace our result a moment later. Give such a writer time to land
  // (twice our own PUT, at least 250 ms, at most 2 s), then read the tag once more: a run
  // that says it annotated the tag must have left it on its result, or say that it did not.
  await sleep(Math.min(MAX_SETTLE_MS, Math.max(opts.settleMs ?? DEFAULT_SETTLE_MS, 2 * (Date.now() - putStarted))));
  const now = await readBack(client, tagRef);
  if (now?.digest !== result.digest) {
    throw new ConflictError(`${ref.repository}:${ref.tag} was replaced right after annotating: tagtrail wrote ${result.digest}, and the tag is ${now?.digest ?? 'gone'} now`, {
      hint: `another writer pushed or annotated the tag at the same time; ${result.digest} is still in the registry, untagged; run annotate again to annotate what the tag holds now`,
    });
  }
}

/** Race check: if someone moved the tag since our read, leave their manifest in place. */
async function raceCheck(client: RegistryClient, tagRef: Reference & { tag: string }, expected: string): Promise<void> {
  let now: ManifestHead | undefined;
  try {
    now = await client.headManifest(tagRef);
  } catch (err) {
    if (!isTagBeingWritten(err)) throw err;
    throw new ConflictError(`${tagRef.repository}:${tagRef.tag} is being written by another client right now (the registry answered 500 to reading it); nothing was changed`, {
      hint: 'someone is pushing the tag at this moment; run annotate again to annotate what it holds then',
    });
  }
  if (now?.digest !== expected) {
    throw new ConflictError(`${tagRef.repository}:${tagRef.tag} moved while annotating: it was ${expected} when read and is ${now?.digest ?? 'gone'} now; nothing was changed`, {
      hint: 'someone pushed the tag in the meantime; run annotate again to annotate the new image',
    });
  }
}

/**
 * True when the index itself changes whatever its children hold: its own annotations differ
 * under the changes, or it is converted. (A rewrite that only follows its children's new
 * digests is not known before they are read.) Invalid annotations say false here and are
 * refused by the rewrite.
 */
function topChangesAnyway(top: Manifest, changes: AnnotationChanges, toOci: boolean): boolean {
  if (toOci && isDockerMediaType(top.mediaType)) return true;
  return !isEmptyDiff(diffAnnotations(top.annotations, applyAnnotationChanges(top.annotations, changes)));
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

  if (top.json.subject !== undefined && !opts.force) {
    throw new InvalidInputError('UNSUPPORTED', `${formatReference(ref)} carries a subject: it is an artifact (a signature, an SBOM, a referrer) of ${subjectDigest(top) ?? 'another manifest'}`, {
      hint: 'annotating it changes its digest, and it then drops out of its subject\'s referrers list; pass --force to annotate it anyway',
    });
  }
  // What the new digest leaves behind is looked up while the rest goes on: the look-ups read other
  // tags and manifests, and their answers only go into warnings, so nothing waits for them. When
  // the top manifest changes whatever lies below it, they start beside the reads of an index's
  // children, whose connections the writes then reuse; else once the plan says whether anything
  // changes, beside the first write. Either way they go out just after the requests the run waits
  // for, which so take the connection the read of the top manifest left open instead of opening
  // one (a round trip or more on a real link, TLS included). A run that fails stops them: its
  // error is the answer, and their retries must not hold it up.
  const lookUps = new AbortController();
  let dependents: Promise<string[]> | undefined;
  const lookUp = (): Promise<string[]> => {
    dependents ??= dependentsWarning(client, ref, top.digest, lookUps.signal);
    dependents.catch(() => undefined); // awaited below; a run stopped before that must not leave it unhandled
    return dependents;
  };
  const topChanges = top.kind === 'index' && !opts.fromLabels && topChangesAnyway(top, changes, toOci);
  try {
    // Plan the whole tree first (every read, no write), so that bad input found anywhere stops
    // the run before the first write; then PUT what changed by digest, innermost first.
    let plan: Planned | undefined;
    if (top.kind === 'image') {
      result = rewrite(top, withLabels(changes, await labelsOf(top)), toOci);
    } else {
      const planning = planIndex({ client, ref, opts: { ...opts, changes }, toOci, labelsOf, outcomes, readReferencesEarly: topChanges }, top, 1, '');
      if (topChanges) lookUp();
      plan = await planning;
      result = plan.r;
    }
    outcomes.unshift({
      platform: top.kind === 'index' ? 'index' : 'manifest',
      mediaType: result.mediaType,
      before: top.digest,
      after: result.digest,
      diff: result.diff,
      converted: result.converted,
    });
    const writing = result.changed && !opts.dryRun ? write(client, ref, top, result, plan, opts) : undefined;
    if (result.changed) lookUp();
    await writing;
  } catch (err) {
    lookUps.abort();
    throw err;
  }
  const warnings = dependents ? await dependents : [];
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
    warnings,
  };
}
