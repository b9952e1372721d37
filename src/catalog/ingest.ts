// A manifest in the registry → its records in the catalog. Used by sync, the webhook and the
// periodic reconcile alike.
//
// Cost, per new digest: one manifest GET (plus one per platform manifest of an index). A config
// blob is read only for an image manifest that carries no build annotations (neither it nor the
// index it came with), only for image configs, and once per config digest: the store remembers
// which configs it has read, even those without labels. With `readConfigs` (sync/serve
// --read-configs), every new image config is read, still once per digest, for builder evidence
// (its history, author and labels; see builder.ts). A digest already in the catalog costs
// nothing; two callers asking for the same new digest at once share one fetch.
import { InvalidInputError, NotFoundError, PayloadTooLargeError, UnreadableManifestError } from '../errors.js';
import { hasBuildAnnotations } from '../details/keys.js';
import { type Annotations, emptyAnnotations } from '../oci/annotations.js';
import { labelsOfConfig } from '../oci/config.js';
import { type Descriptor, type ImageManifest, type Manifest, isReferenceDescriptor } from '../oci/manifest.js';
import { DOCKER_CONFIG, OCI_CONFIG, isImageManifestMediaType } from '../oci/mediatypes.js';
import type { RegistryClient } from '../oci/registry.js';
import { type Limiter, unlimited } from './limit.js';
import { type FollowOutcome, followReferrersTag } from './follow-referrers.js';
import type { Store } from './store.js';
import type { ChildRecord, ManifestRecord } from './types.js';

interface IngestStats {
  /** Manifest bodies read from the registry. */
  manifestsFetched: number;
  /** Config blobs read for their labels. */
  configsFetched: number;
  /** Manifests written to the catalog (an index and its new children count one each). */
  manifestsStored: number;
}

interface IngestOptions {
  client: RegistryClient;
  store: Store;
  /** host[:port] of the registry every manifest is read from. */
  registry: string;
  /** Bounds the registry requests (each GET is one call). */
  limit?: Limiter;
  /** Called after each read from the registry, e.g. for metrics. */
  onRead?: (what: 'manifest' | 'config') => void;
  /** Read every new image config (once per config digest) for builder evidence, not only those of unannotated images. */
  readConfigs?: boolean;
  /** A build-details referrer (or referrers tag) left out, and why; see follow-referrers.ts. */
  onWarning?: (message: string) => void;
}

type IngestOutcome = 'known' | 'stored';

/** Largest config blob read for labels. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

function isImageConfig(d: Descriptor): boolean {
  return d.mediaType === OCI_CONFIG || d.mediaType === DOCKER_CONFIG;
}

/** A child worth reading with its index: an image manifest, not a reference (attestation, builder reference). */
function isPlatformManifest(d: Descriptor): boolean {
  return isImageManifestMediaType(d.mediaType) && !isReferenceDescriptor(d);
}

interface ConfigRead {
  labels: Annotations;
  /** The parsed JSON, for builder evidence; undefined when it is not JSON. */
  config?: unknown;
}

function readConfig(blob: Uint8Array): ConfigRead {
  let cfg: unknown;
  try {
    cfg = JSON.parse(Buffer.from(blob).toString('utf8'));
  } catch {
    // Not JSON: an image config it is not. Recorded as "read, no labels".
    return { labels: emptyAnnotations() };
  }
  return { labels: labelsOfConfig(cfg) ?? emptyAnnotations(), config: cfg };
}

function baseRecord(m: Manifest): ManifestRecord {
  const artifactType = typeof m.json.artifactType === 'string' ? m.json.artifactType : null;
  return {
    digest: m.digest,
    mediaType: m.mediaType,
    raw: m.bytes,
    artifactType,
    configDigest: m.kind === 'image' ? m.config.digest : null,
    annotations: m.annotations,
  };
}

/** The error a recorded unreadable manifest stands for, as when it was read. */
function unreadableError(code: string, message: string): UnreadableManifestError | PayloadTooLargeError {
  if (code === 'PAYLOAD_TOO_LARGE') return new PayloadTooLargeError(message);
  // UNREADABLE_MANIFEST, and UNSUPPORTED or INVALID_MANIFEST as earlier versions recorded it.
  return new UnreadableManifestError(message);
}

export class Ingestor {
  readonly stats: IngestStats = { manifestsFetched: 0, configsFetched: 0, manifestsStored: 0 };
  private readonly limit: Limiter;
  private readonly inflight = new Map<string, Promise<IngestOutcome>>();
  private readonly configsInflight = new Map<string, Promise<ConfigRead | undefined>>();

  constructor(private readonly options: IngestOptions) {
    this.limit = options.limit ?? unlimited;
  }

  /** Follows a sha256-<hex> referrers tag into the catalog's build-details referrers (follow-referrers.ts). */
  followReferrersTag(repository: string, tag: string, digest?: string, pushed?: string): Promise<FollowOutcome> {
    const { client, store, registry, onWarning } = this.options;
    return followReferrersTag(
      {
        client,
        store,
        registry,
        limit: this.limit,
        onRead: () => {
          this.stats.manifestsFetched++;
          this.options.onRead?.('manifest');
        },
        ...(onWarning ? { onWarning } : {}),
      },
      repository,
      tag,
      digest,
      pushed,
    );
  }

  /** Whether the registry has the manifest `digest` in `repository` now (a HEAD; the catalog is not asked). */
  async registryHas(repository: string, digest: string): Promise<boolean> {
    const { client, registry } = this.options;
    return (await this.limit(() => client.headManifest({ registry, repository, digest }))) !== undefined;
  }

  /**
   * Makes sure the catalog holds the manifest `digest` of `repository`, reading it (and, for an
   * index, its platform manifests) from the registry only when the catalog does not have it.
   * `write` stores the record read (default: putManifest); the webhook writes it with its tag in
   * one transaction (Store.pushTag). Callers asking for the same digest while it is read and
   * written share that work: only the first one's `write` runs, and each gets 'stored'.
   */
  ingest(repository: string, digest: string, write?: (record: ManifestRecord) => Promise<unknown>): Promise<IngestOutcome> {
    const running = this.inflight.get(digest);
    if (running) return running;
    const p = this.ingestOnce(repository, digest, write ?? ((record) => this.options.store.putManifest(record))).finally(() => this.inflight.delete(digest));
    this.inflight.set(digest, p);
    return p;
  }

  private async ingestOnce(repository: string, digest: string, write: (record: ManifestRecord) => Promise<unknown>): Promise<IngestOutcome> {
    const { store } = this.options;
    // One look-up for both questions: stored already, or known to be unreadable.
    const known = await store.lookupManifest(digest);
    if (known.stored) {
      if (this.options.readConfigs) await this.readUnreadConfigs(repository, digest);
      return 'known';
    }
    const top = await this.fetch(repository, digest, known.unreadable ?? null);
    const record = baseRecord(top);
    if (top.kind === 'image') {
      if (!hasBuildAnnotations(top.annotations) || this.options.readConfigs) {
        const read = await this.labels(repository, top.config);
        if (read) Object.assign(record, read);
      }
      await write(record);
      this.stats.manifestsStored++;
      return 'stored';
    }

    // An index: read the platform manifests the catalog lacks, then decide on labels for the
    // image as a whole: any build annotation on the index or a child makes labels unnecessary.
    const children: ChildRecord[] = top.manifests.map((d) => ({
      digest: d.digest,
      mediaType: d.mediaType,
      size: d.size,
      ...(d.platform ? { platform: { os: d.platform.os, architecture: d.platform.architecture, ...(d.platform.variant ? { variant: d.platform.variant } : {}) } } : {}),
    }));
    const fetched = new Map<string, ImageManifest>();
    let annotated = hasBuildAnnotations(top.annotations);
    const wanted = [...new Set(top.manifests.filter(isPlatformManifest).map((d) => d.digest))];
    // The catalog is asked about all the platform manifests at once, not one by one.
    const stored = wanted.length > 0 ? await store.hasManifests(wanted) : new Set<string>();
    const lacking = wanted.filter((d) => !stored.has(d));
    const recorded = lacking.length > 0 ? await store.unreadableAmong(lacking) : new Map<string, { code: string; reason: string }>();
    await Promise.all([
      (async () => {
        if (annotated || stored.size === 0) return;
        for (const known of (await store.getImages([...stored])).values()) if (known.hasBuildAnnotations) annotated = true;
      })(),
      ...lacking.map(async (childDigest) => {
        const child = await this.fetch(repository, childDigest, recorded.get(childDigest) ?? null);
        // An index listing an index as a platform manifest is malformed; keep only images.
        if (child.kind !== 'image') return;
        fetched.set(childDigest, child);
        if (hasBuildAnnotations(child.annotations)) annotated = true;
      }),
    ]);
    const childRecords = new Map<string, ManifestRecord>();
    await Promise.all(
      [...fetched.values()].map(async (child) => {
        const rec = baseRecord(child);
        if (!annotated || this.options.readConfigs) {
          const read = await this.labels(repository, child.config);
          if (read) Object.assign(rec, read);
        }
        childRecords.set(child.digest, rec);
      }),
    );
    record.children = children.map((c) => {
      const manifest = childRecords.get(c.digest);
      return manifest ? { ...c, manifest } : c;
    });
    await write(record);
    this.stats.manifestsStored += 1 + childRecords.size;
    return 'stored';
  }

  /**
   * With readConfigs, a manifest stored earlier without its config read ("unknown: config not
   * read") gets its config (or, for an index, its platform manifests' configs) read now, once:
   * after that its builder is decided, so the next run reads nothing.
   */
  private async readUnreadConfigs(repository: string, digest: string): Promise<void> {
    const { store } = this.options;
    const insight = await store.manifestInsight(digest);
    if (insight?.builder !== 'unread') return;
    const detail = await store.getImage(digest);
    if (!detail) return;
    const images = detail.configDigest
      ? [detail]
      : (await Promise.all(detail.children.filter((c) => c.annotations !== null && !isReferenceDescriptor({ platform: c.platform })).map((c) => store.getImage(c.digest)))).filter(
          (d): d is NonNullable<typeof d> => d !== null,
        );
    for (const image of images) {
      const config = configDescriptor(image.raw);
      if (!config) continue;
      const read = await this.labels(repository, config);
      if (read) await store.putConfigLabels(config.digest, read.labels, read.config);
    }
  }

  /** `recorded`: what the catalog says of the digest being unreadable, asked by the caller already. */
  private async fetch(repository: string, digest: string, recorded: { code: string; reason: string } | null): Promise<Manifest> {
    const { client, registry, store } = this.options;
    // A digest names fixed bytes: one tagtrail could not read before, it cannot read now.
    const known = recorded;
    if (known) throw unreadableError(known.code, `${known.reason} (found on an earlier read; not fetched again)`);
    let m: Manifest;
    try {
      m = await this.limit(() => client.getManifest({ registry, repository, digest }));
    } catch (err) {
      const unreadable = err instanceof UnreadableManifestError || err instanceof PayloadTooLargeError;
      if (unreadable) await store.markUnreadable(digest, err.code, err.message, new Date());
      throw err;
    }
    this.stats.manifestsFetched++;
    this.options.onRead?.('manifest');
    return m;
  }

  /**
   * The labels of an image manifest's config, or undefined when the catalog has them already or
   * the config is not an image config. A missing or unreadable config reads as no labels.
   */
  private labels(repository: string, config: Descriptor): Promise<ConfigRead | undefined> {
    if (!isImageConfig(config)) return Promise.resolve(undefined);
    const configDigest = config.digest;
    const running = this.configsInflight.get(configDigest);
    if (running) return running.then(() => undefined);
    const p = (async (): Promise<ConfigRead | undefined> => {
      const { client, registry, store } = this.options;
      if (await store.hasReadConfig(configDigest)) return undefined;
      if (config.size > MAX_CONFIG_BYTES) return { labels: emptyAnnotations() };
      try {
        const blob = await this.limit(() => client.getBlob(registry, repository, configDigest, MAX_CONFIG_BYTES));
        this.stats.configsFetched++;
        this.options.onRead?.('config');
        return readConfig(blob);
      } catch (err) {
        // Gone, or not something we can read: remember it as read, so no later pass tries again.
        if (err instanceof NotFoundError || err instanceof InvalidInputError || err instanceof UnreadableManifestError || err instanceof PayloadTooLargeError) return { labels: emptyAnnotations() };
        throw err;
      }
    })().finally(() => this.configsInflight.delete(configDigest));
    this.configsInflight.set(configDigest, p);
    return p;
  }
}

/** The config descriptor of stored image manifest bytes; undefined when they have none. */
function configDescriptor(raw: Uint8Array): Descriptor | undefined {
  try {
    const c = (JSON.parse(Buffer.from(raw).toString('utf8')) as { config?: Partial<Descriptor> } | null)?.config;
    if (typeof c?.mediaType === 'string' && typeof c.digest === 'string' && typeof c.size === 'number') return { mediaType: c.mediaType, digest: c.digest, size: c.size };
  } catch {
    // Not JSON: nothing to read.
  }
  return undefined;
}
