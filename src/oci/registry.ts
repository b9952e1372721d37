// Registry operations over the transport: manifests (GET, HEAD, PUT of exact bytes), tags and
// the catalog (with Link pagination), blobs (digest-verified; small uploads), and the referrers API.
import { AuthError, DigestMismatchError, PaginationLimitError, RegistryError } from '../errors.js';
import { CATALOG_SCOPE, pullScope, pushScope, type Scope } from './auth/token.js';
import { sha256Digest, verifyDigest } from './digest.js';
import { MAX_MANIFEST_BYTES, isSchema1Manifest, parseManifest, schema1Error, type Descriptor, type Manifest } from './manifest.js';
import { MANIFEST_ACCEPT, OCI_INDEX } from './mediatypes.js';
import { type Reference, isValidDigest, manifestReference } from './reference.js';
import { Transport, type TransportOptions } from './transport.js';

export interface ManifestHead {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

interface ReferrersPage {
  /** Referrer descriptors, all pages together. */
  readonly manifests: readonly Descriptor[];
  /** The registry filtered by artifactType itself (OCI-Filters-Applied). */
  readonly filtered: boolean;
}

/**
 * CNCF distribution's filesystem storage rewrites a tag's link file in place, so a read of a tag
 * that overlaps another client's PUT of the same tag can get HTTP 500. Where a tag may be written
 * concurrently (a race check, a read-back), such a 500 means "being written", not a broken registry.
 */
export function isTagBeingWritten(err: unknown): boolean {
  return err instanceof RegistryError && err.status === 500;
}

function repoPath(repository: string): string {
  // Repository names are validated by the reference grammar: no encoding needed, and none wanted
  // for the slashes.
  return `/v2/${repository}`;
}

/** The next page from a Link header: </v2/_catalog?last=x&n=100>; rel="next". */
export function nextLink(link: string | null): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(part.trim());
    if (m?.[1]) return m[1];
  }
  return undefined;
}

/** Pages of one list (a repository's tags, the catalog, referrers) tagtrail follows at most. */
export const DEFAULT_MAX_LIST_PAGES = 10_000;

interface RegistryClientOptions extends TransportOptions {
  /** Pages of one list followed at most; a registry whose Link never ends is refused past it. */
  readonly maxListPages?: number;
}

export class RegistryClient {
  readonly transport: Transport;
  private readonly maxListPages: number;
  /** Repositories we are about to write: their tokens ask for push from the start. */
  private readonly writeIntent = new Set<string>();

  constructor(opts: RegistryClientOptions) {
    this.transport = new Transport(opts);
    this.maxListPages = opts.maxListPages ?? DEFAULT_MAX_LIST_PAGES;
  }

  /** A registry that always names a next page would keep us listing forever. */
  private pageLimitError(what: string): PaginationLimitError {
    return new PaginationLimitError(`the registry's ${what} goes on past ${this.maxListPages} pages; tagtrail stops there`, {
      hint: 'the registry keeps sending a Link to a next page; check its pagination (or a proxy in front of it)',
    });
  }

  /** Ask for pull,push tokens for this repository from the first request on, saving a second token fetch. */
  intendToWrite(registry: string, repository: string): void {
    this.writeIntent.add(`${registry}/${repository}`);
  }

  private readScope(registry: string, repository: string): Scope {
    return this.writeIntent.has(`${registry}/${repository}`) ? pushScope(repository) : pullScope(repository);
  }

  async getManifest(ref: Reference): Promise<Manifest> {
    const reference = manifestReference(ref);
    const res = await this.transport.request({
      registry: ref.registry,
      method: 'GET',
      path: `${repoPath(ref.repository)}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      scope: this.readScope(ref.registry, ref.repository),
      maxBodyBytes: MAX_MANIFEST_BYTES,
    });
    // Schema 1 first: a signed one's digest covers its payload without the signatures, so the
    // digest checks below would blame a proxy for what is only an old format.
    if (isSchema1Manifest(res.body, res.headers.get('content-type') ?? undefined)) throw schema1Error();
    const digest = sha256Digest(res.body);
    if (ref.digest) verifyDigest(res.body, ref.digest, `the manifest ${ref.repository}@${ref.digest}`);
    const header = res.headers.get('docker-content-digest');
    if (header && isValidDigest(header) && header.startsWith('sha256:') && header !== digest) {
      throw new DigestMismatchError(`the registry said the manifest of ${ref.repository}:${reference} is ${header}, but its bytes hash to ${digest}`, {
        hint: 'a proxy may have altered the response; retry, and check any proxy between you and the registry',
      });
    }
    return parseManifest(res.body, res.headers.get('content-type') ?? undefined, digest);
  }

  /** The digest a tag or digest resolves to, or undefined when it does not exist. */
  async headManifest(ref: Reference): Promise<ManifestHead | undefined> {
    const res = await this.transport.request({
      registry: ref.registry,
      method: 'HEAD',
      path: `${repoPath(ref.repository)}/manifests/${manifestReference(ref)}`,
      headers: { accept: MANIFEST_ACCEPT },
      scope: this.readScope(ref.registry, ref.repository),
      accept: [404],
    });
    if (res.status === 404) return undefined;
    const digest = res.headers.get('docker-content-digest');
    if (!digest || !isValidDigest(digest)) {
      // Without the header a HEAD cannot tell us the digest; fall back to reading the bytes.
      const m = await this.getManifest(ref);
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.byteLength };
    }
    return {
      digest,
      mediaType: (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '',
      size: Number(res.headers.get('content-length') ?? 0),
    };
  }

  /**
   * PUTs exact bytes under a tag or digest, and checks the registry stored what we sent: its
   * Docker-Content-Digest must equal the digest of our bytes.
   */
  async putManifest(registry: string, repository: string, reference: string, bytes: Uint8Array, mediaType: string, options: { signal?: AbortSignal } = {}): Promise<string> {
    return (await this.putManifestWithResult(registry, repository, reference, bytes, mediaType, options)).digest;
  }

  /**
   * putManifest, also returning the OCI-Subject header: a registry with the referrers API sends
   * it when it stored a manifest that has a subject (OCI distribution spec 1.1).
   */
  async putManifestWithResult(registry: string, repository: string, reference: string, bytes: Uint8Array, mediaType: string, options: { signal?: AbortSignal } = {}): Promise<{ digest: string; ociSubject?: string }> {
    const digest = sha256Digest(bytes);
    const res = await this.transport.request({
      registry,
      method: 'PUT',
      path: `${repoPath(repository)}/manifests/${reference}`,
      headers: { 'content-type': mediaType },
      body: bytes,
      scope: pushScope(repository),
      maxBodyBytes: 64 * 1024,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const stored = res.headers.get('docker-content-digest');
    if (stored && stored !== digest) {
      throw new DigestMismatchError(`the registry stored ${repository}:${reference} as ${stored}, but the bytes sent hash to ${digest}`, {
        hint: 'the registry rewrote the manifest; tagtrail will not trust the result',
      });
    }
    const subject = res.headers.get('oci-subject')?.trim();
    return { digest, ...(subject ? { ociSubject: subject } : {}) };
  }

  private async *paginate(registry: string, firstPath: string, scope: Scope, field: 'tags' | 'repositories', what: string, signal?: AbortSignal): AsyncGenerator<string> {
    let path: string | undefined = firstPath;
    const seen = new Set<string>();
    while (path) {
      if (seen.size >= this.maxListPages) throw this.pageLimitError(what);
      if (seen.has(path)) throw new RegistryError(`the registry's pagination loops at ${path.split('?')[0]}`, 500);
      seen.add(path);
      const res = await this.transport.request({ registry, method: 'GET', path, scope, maxBodyBytes: 32 * 1024 * 1024, ...(signal ? { signal } : {}) });
      let list: unknown;
      try {
        list = (JSON.parse(Buffer.from(res.body).toString('utf8')) as Record<string, unknown>)[field];
      } catch {
        throw new RegistryError(`the registry's ${field} list is not JSON`, res.status);
      }
      if (list !== null && list !== undefined && !Array.isArray(list)) throw new RegistryError(`the registry's ${field} list is not a list`, res.status);
      for (const item of (list ?? []) as unknown[]) if (typeof item === 'string') yield item;
      const next = nextLink(res.headers.get('link'));
      if (!next) break;
      // Only follow links on the same registry and under /v2/.
      const u = new URL(next, this.transport.baseUrl(registry));
      if (u.origin !== new URL(this.transport.baseUrl(registry)).origin || !u.pathname.startsWith('/v2/')) {
        throw new RegistryError('the registry sent a pagination link to another host', res.status);
      }
      path = `${u.pathname}${u.search}`;
    }
  }

  listTags(registry: string, repository: string, pageSize = 1000, signal?: AbortSignal): AsyncGenerator<string> {
    return this.paginate(registry, `${repoPath(repository)}/tags/list?n=${pageSize}`, pullScope(repository), 'tags', `tag list of ${repository}`, signal);
  }

  listRepositories(registry: string, pageSize = 1000, last?: string): AsyncGenerator<string> {
    const q = last ? `&last=${encodeURIComponent(last)}` : '';
    return this.paginate(registry, `/v2/_catalog?n=${pageSize}${q}`, CATALOG_SCOPE, 'repositories', 'repository catalog');
  }

  /** True when the repository holds this blob (HEAD, no body read). */
  async blobExists(registry: string, repository: string, digest: string): Promise<boolean> {
    const res = await this.transport.request({
      registry,
      method: 'HEAD',
      path: `${repoPath(repository)}/blobs/${digest}`,
      scope: this.readScope(registry, repository),
      accept: [404],
    });
    return res.status !== 404;
  }

  /**
   * Uploads a small blob in one piece: HEAD first (nothing to do when it is there), else POST to
   * open an upload and PUT the bytes with their digest. The registry must answer with that
   * digest. Only for small blobs (the empty config of an artifact); layers are never uploaded.
   */
  async uploadBlob(registry: string, repository: string, bytes: Uint8Array, expectedDigest?: string): Promise<{ digest: string; uploaded: boolean }> {
    const digest = sha256Digest(bytes);
    if (expectedDigest !== undefined && expectedDigest !== digest) {
      throw new DigestMismatchError(`the blob to upload hashes to ${digest}, not ${expectedDigest}`, { hint: 'this is a bug in tagtrail; please report it' });
    }
    this.intendToWrite(registry, repository);
    if (await this.blobExists(registry, repository, digest)) return { digest, uploaded: false };
    // A broken connection can cut off the answer to a PUT the registry already carried out; the
    // retried PUT then finds its upload session gone (404). So on failure look for the blob, and
    // open one more upload only when it is not there.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.uploadOnce(registry, repository, bytes, digest);
        return { digest, uploaded: true };
      } catch (err) {
        if (err instanceof DigestMismatchError || err instanceof AuthError) throw err;
        if (await this.blobExists(registry, repository, digest)) return { digest, uploaded: true };
        if (attempt >= 2) throw err;
      }
    }
  }

  private async uploadOnce(registry: string, repository: string, bytes: Uint8Array, digest: string): Promise<void> {
    const scope = pushScope(repository);
    const opened = await this.transport.request({
      registry,
      method: 'POST',
      path: `${repoPath(repository)}/blobs/uploads/`,
      headers: { 'content-length': '0' },
      scope,
      maxBodyBytes: 64 * 1024,
    });
    const location = opened.headers.get('location');
    if (opened.status !== 202 || !location) {
      throw new RegistryError(`the registry did not open a blob upload in ${repository} (HTTP ${opened.status}${location ? '' : ', no Location'})`, opened.status, [], {
        hint: 'the registry must answer POST /v2/<name>/blobs/uploads/ with 202 and a Location',
      });
    }
    // Location may be absolute or relative to the request; it must stay on this registry, since
    // the request carries our credentials.
    const base = this.transport.baseUrl(registry);
    const u = new URL(location, `${base}${repoPath(repository)}/blobs/uploads/`);
    if (u.origin !== new URL(base).origin || !u.pathname.startsWith('/v2/')) {
      throw new RegistryError(`the registry sent the blob upload of ${repository} to another host (${u.host})`, opened.status, [], {
        hint: 'tagtrail uploads only to the registry itself, so that credentials never leave it',
      });
    }
    u.searchParams.set('digest', digest);
    const put = await this.transport.request({
      registry,
      method: 'PUT',
      path: `${u.pathname}${u.search}`,
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
      scope,
      maxBodyBytes: 64 * 1024,
    });
    const stored = put.headers.get('docker-content-digest');
    if (stored && stored !== digest) {
      throw new DigestMismatchError(`the registry stored the blob as ${stored}, but its bytes hash to ${digest}`, { hint: 'a proxy may have altered the upload; retry' });
    }
  }

  /**
   * The referrers API (OCI distribution spec 1.1): GET /v2/<name>/referrers/<digest>, following
   * Link pagination. undefined when the registry does not have the API (404). `filtered` says the
   * registry applied the artifactType filter itself (OCI-Filters-Applied); when it did not, the
   * caller gets every referrer and filters on its own.
   */
  async listReferrers(registry: string, repository: string, digest: string, artifactType?: string, signal?: AbortSignal): Promise<ReferrersPage | undefined> {
    const scope = this.readScope(registry, repository);
    const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    let path: string | undefined = `${repoPath(repository)}/referrers/${digest}${q}`;
    const seen = new Set<string>();
    const manifests: Descriptor[] = [];
    let filtered = artifactType !== undefined;
    for (let page = 0; path; page++) {
      if (page >= this.maxListPages) throw this.pageLimitError(`referrers list of ${repository}@${digest}`);
      if (seen.has(path)) throw new RegistryError(`the registry's referrers pagination loops at ${path.split('?')[0]}`, 500);
      seen.add(path);
      const res = await this.transport.request({
        registry,
        method: 'GET',
        path,
        headers: { accept: OCI_INDEX },
        scope,
        accept: page === 0 ? [404] : [],
        ...(signal ? { signal } : {}),
        maxBodyBytes: MAX_MANIFEST_BYTES,
      });
      if (res.status === 404) return undefined;
      let index: Manifest;
      try {
        index = parseManifest(res.body, res.headers.get('content-type') ?? OCI_INDEX);
      } catch (err) {
        throw new RegistryError(`the registry's referrers list for ${repository}@${digest} is not an OCI index`, res.status, [], { cause: err });
      }
      if (index.kind !== 'index') throw new RegistryError(`the registry's referrers list for ${repository}@${digest} is not an OCI index`, res.status);
      manifests.push(...index.manifests);
      const applied = (res.headers.get('oci-filters-applied') ?? '').split(',').map((x) => x.trim());
      if (!applied.includes('artifactType')) filtered = false;
      const next = nextLink(res.headers.get('link'));
      if (!next) break;
      const u: URL = new URL(next, `${this.transport.baseUrl(registry)}${path}`);
      if (u.origin !== new URL(this.transport.baseUrl(registry)).origin || !u.pathname.startsWith('/v2/')) {
        throw new RegistryError('the registry sent a referrers pagination link to another host', res.status);
      }
      path = `${u.pathname}${u.search}`;
    }
    const wanted = artifactType === undefined || filtered ? manifests : manifests.filter((d) => d.artifactType === artifactType);
    return { manifests: wanted, filtered };
  }

  /** A blob, checked against its digest. Used only for config blobs, which are small. */
  async getBlob(registry: string, repository: string, digest: string, maxBytes = 4 * 1024 * 1024): Promise<Uint8Array> {
    const res = await this.transport.request({
      registry,
      method: 'GET',
      path: `${repoPath(repository)}/blobs/${digest}`,
      scope: pullScope(repository),
      maxBodyBytes: maxBytes,
    });
    verifyDigest(res.body, digest, `the blob ${repository}@${digest}`);
    return res.body;
  }
}
