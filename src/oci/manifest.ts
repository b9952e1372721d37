// Manifests keep their raw bytes; the parsed JSON is a view of them. Every change goes through
// `withAnnotations` or `toOci`, which produce new bytes and the digest of those bytes.
import { InvalidInputError, UnreadableManifestError } from '../errors.js';
import type { Annotations } from './annotations.js';
import { sha256Digest } from './digest.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_TO_OCI,
  OCI_INDEX,
  OCI_MANIFEST,
  isImageManifestMediaType,
  isIndexMediaType,
  isSchema1MediaType,
} from './mediatypes.js';
import { isValidDigest } from './reference.js';

/** Registries commonly cap manifests at 4 MiB; so do we, before parsing. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Real manifests nest five or six levels deep. JSON.parse reads any depth, but JSON.stringify
 * recurses and overflows the stack (a RangeError) at a few thousand levels, so a manifest that
 * parsed could not be written back. Refuse deep nesting at the door instead.
 */
export const MAX_MANIFEST_DEPTH = 64;

/**
 * Real indexes list a few dozen children at most; one with thousands would cost as many requests
 * per run, so tagtrail reads none past this.
 */
export const MAX_INDEX_CHILDREN = 1000;

/** The deepest nesting of objects and arrays in JSON text, counted on the bytes, outside strings. */
export function jsonDepth(bytes: Uint8Array): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === 0x5c) i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) {
      inString = true;
    } else if (b === 0x7b || b === 0x5b) {
      if (++depth > max) max = depth;
    } else if (b === 0x7d || b === 0x5d) {
      depth--;
    }
  }
  return max;
}

/**
 * Sets an own property, even for the key "__proto__": a plain assignment `out[k] = v` would
 * replace the object's prototype instead, dropping the field and letting its contents show
 * through `in` checks.
 */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Annotations;
  artifactType?: string;
  urls?: string[];
  [extra: string]: unknown;
}

interface ManifestCommon {
  readonly mediaType: string;
  /** The exact bytes, as read from or written to the registry. */
  readonly bytes: Uint8Array;
  readonly digest: string;
  readonly json: Record<string, unknown>;
  readonly annotations: Annotations;
}

export interface ImageManifest extends ManifestCommon {
  readonly kind: 'image';
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

export interface IndexManifest extends ManifestCommon {
  readonly kind: 'index';
  readonly manifests: readonly Descriptor[];
}

export type Manifest = ImageManifest | IndexManifest;

function invalid(message: string, hint = 'the registry returned a manifest tagtrail cannot read'): UnreadableManifestError {
  return new UnreadableManifestError(message, { hint });
}

export const SCHEMA1_MESSAGE = 'this is a Docker schema 1 manifest, which is deprecated and cannot carry annotations; schema 1 is not supported';
const SCHEMA1_HINT = 'rebuild and push the image with a current builder (it then gets a schema 2 or OCI manifest), or copy it with `skopeo copy --format oci`';

/**
 * Docker schema 1, told by the Content-Type or by the document itself. Checked before anything
 * else, the digest included: the digest of a signed schema 1 manifest covers its payload without
 * the signatures, so its bytes never hash to the digest the registry names.
 */
export function isSchema1Manifest(bytes: Uint8Array, contentType?: string): boolean {
  const ct = contentType?.split(';')[0]?.trim().toLowerCase();
  if (ct !== undefined && isSchema1MediaType(ct)) return true;
  // Cheap on any size: only a document that says so near its start is parsed.
  const head = Buffer.from(bytes.subarray(0, 4096)).toString('utf8');
  if (!/"schemaVersion"\s*:\s*1\b/.test(head)) return false;
  if (bytes.byteLength > MAX_MANIFEST_BYTES) return true;
  try {
    return (JSON.parse(Buffer.from(bytes).toString('utf8')) as { schemaVersion?: unknown }).schemaVersion === 1;
  } catch {
    return false;
  }
}

export function schema1Error(): UnreadableManifestError {
  return new UnreadableManifestError(SCHEMA1_MESSAGE, { hint: SCHEMA1_HINT });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkAnnotations(v: unknown, where: string): Annotations {
  if (v === undefined) return Object.create(null) as Annotations;
  if (!isRecord(v)) throw invalid(`${where}: "annotations" is not an object`);
  const out = Object.create(null) as Annotations;
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw invalid(`${where}: annotation ${JSON.stringify(k.slice(0, 80))} is not a string`);
    out[k] = val;
  }
  return out;
}

function checkDescriptor(v: unknown, where: string): Descriptor {
  if (!isRecord(v)) throw invalid(`${where} is not an object`);
  if (typeof v.mediaType !== 'string' || v.mediaType === '') throw invalid(`${where} has no mediaType`);
  if (typeof v.digest !== 'string' || !isValidDigest(v.digest)) throw invalid(`${where} has no valid digest`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw invalid(`${where} has no valid size`);
  if (v.platform !== undefined) {
    const p = v.platform;
    if (!isRecord(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string') throw invalid(`${where} has an invalid platform`);
    if (p.variant !== undefined && typeof p.variant !== 'string') throw invalid(`${where} has an invalid platform variant`);
  }
  checkAnnotations(v.annotations, where);
  return v as Descriptor;
}

/**
 * Parses and validates manifest bytes. The media type comes from the document's own mediaType
 * field, else from the Content-Type the registry sent, else from its shape.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string, knownDigest?: string): Manifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new UnreadableManifestError(`the manifest is ${bytes.byteLength} bytes, over the 4 MiB limit`, {
      hint: 'registries refuse manifests over 4 MiB; tagtrail will not read or write one',
    });
  }
  if (jsonDepth(bytes) > MAX_MANIFEST_DEPTH) throw invalid(`the manifest nests objects or arrays more than ${MAX_MANIFEST_DEPTH} levels deep`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw invalid('the manifest is not valid UTF-8 JSON');
  }
  if (!isRecord(json)) throw invalid('the manifest is not a JSON object');
  const ct = contentType?.split(';')[0]?.trim().toLowerCase();
  if (json.schemaVersion === 1 || (ct !== undefined && isSchema1MediaType(ct))) throw schema1Error();
  if (json.schemaVersion !== 2) throw invalid('the manifest has no schemaVersion 2');
  let mediaType: string;
  if (json.mediaType !== undefined) {
    if (typeof json.mediaType !== 'string') throw invalid('the manifest mediaType is not a string');
    mediaType = json.mediaType;
  } else if (ct && (isIndexMediaType(ct) || isImageManifestMediaType(ct))) {
    mediaType = ct;
  } else {
    mediaType = Array.isArray(json.manifests) ? OCI_INDEX : OCI_MANIFEST;
  }
  const digest = knownDigest ?? sha256Digest(bytes);
  const annotations = checkAnnotations(json.annotations, 'the manifest');
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(json.manifests)) throw invalid('the index has no "manifests" list');
    if (json.manifests.length > MAX_INDEX_CHILDREN) {
      throw invalid(`the index lists ${json.manifests.length} manifests, over the limit of ${MAX_INDEX_CHILDREN}`, 'real images list a few dozen platforms and references; an index this large is refused rather than read one child at a time');
    }
    const manifests = json.manifests.map((d, i) => checkDescriptor(d, `manifests[${i}]`));
    return { kind: 'index', mediaType, bytes, digest, json, annotations, manifests };
  }
  if (isImageManifestMediaType(mediaType)) {
    const config = checkDescriptor(json.config, 'the config descriptor');
    if (!Array.isArray(json.layers)) throw invalid('the manifest has no "layers" list');
    const layers = json.layers.map((d, i) => checkDescriptor(d, `layers[${i}]`));
    return { kind: 'image', mediaType, bytes, digest, json, annotations, config, layers };
  }
  throw new UnreadableManifestError(`unsupported manifest media type ${JSON.stringify(mediaType.slice(0, 100))}`, {
    hint: 'tagtrail reads OCI manifests and indexes, and Docker schema 2 manifests and manifest lists',
  });
}

/** Compact JSON, as BuildKit and skopeo write it. */
export function serialize(json: Record<string, unknown>): Uint8Array {
  return Buffer.from(JSON.stringify(json), 'utf8');
}

/**
 * New manifest JSON with these annotations (an empty set drops the field). The existing key
 * order is kept; a new "annotations" field goes last, where the OCI spec lists it.
 */
export function jsonWithAnnotations(json: Record<string, unknown>, annotations: Annotations): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const empty = Object.keys(annotations).length === 0;
  for (const [k, v] of Object.entries(json)) {
    if (k === 'annotations') {
      if (!empty) out.annotations = { ...annotations };
    } else {
      setOwn(out, k, v);
    }
  }
  if (!empty && !Object.prototype.hasOwnProperty.call(out, 'annotations')) out.annotations = { ...annotations };
  return out;
}

function convertDescriptor(d: unknown): unknown {
  if (!isRecord(d) || typeof d.mediaType !== 'string') return d;
  const to = DOCKER_TO_OCI[d.mediaType];
  return to ? { ...d, mediaType: to } : d;
}

/** Docker schema 2 / manifest list → OCI media types. Blob bytes are untouched. */
export function jsonToOci(json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    if (k === 'mediaType' && typeof v === 'string') out[k] = DOCKER_TO_OCI[v] ?? v;
    else if (k === 'config') out[k] = convertDescriptor(v);
    else if (k === 'layers' && Array.isArray(v)) out[k] = v.map(convertDescriptor);
    else setOwn(out, k, v);
  }
  return out;
}

export function isDockerMediaType(mt: string): boolean {
  return mt === DOCKER_MANIFEST || mt === DOCKER_MANIFEST_LIST;
}

export function formatPlatform(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');
}

export interface PlatformFilter {
  os: string;
  architecture: string;
  variant?: string;
}

export function parsePlatform(s: string): PlatformFilter {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/i.test(p))) {
    throw new InvalidInputError('INVALID_REFERENCE', `invalid platform ${JSON.stringify(s.slice(0, 80))}`, {
      hint: 'write a platform as os/arch[/variant], e.g. linux/amd64 or linux/arm/v7',
    });
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return { os, architecture, ...(variant !== undefined ? { variant } : {}) };
}

/** arm64 with no variant means v8, as containerd normalises it. */
function normVariant(arch: string, variant: string | undefined): string {
  if (arch === 'arm64' && (variant === undefined || variant === '')) return 'v8';
  return variant ?? '';
}

export function platformMatches(p: Platform | undefined, f: PlatformFilter): boolean {
  if (!p || p.os !== f.os || p.architecture !== f.architecture) return false;
  if (f.variant === undefined) return true;
  return normVariant(p.architecture, p.variant) === normVariant(f.architecture, f.variant);
}

export const REFERENCE_TYPE = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST = 'vnd.docker.reference.digest';
/** The REFERENCE_TYPE of BuildKit's provenance and SBOM attestations. */
export const ATTESTATION_REFERENCE = 'attestation-manifest';

/** What an index entry, a catalog child or a stored platform shows of itself; any part may be missing. */
export interface ReferenceCandidate {
  readonly platform?: { readonly os?: string | null; readonly architecture?: string | null } | null;
  readonly annotations?: Readonly<Record<string, string>> | null;
}

/**
 * The one rule for "a reference, not a platform": an index entry that describes another entry
 * (BuildKit attestations, builder references, anything with vnd.docker.reference.type) or that
 * sits on the unknown/unknown platform. Such entries are never annotated as platforms, never
 * listed as platforms, and follow the manifest they name when it changes.
 */
export function isReferenceDescriptor(d: ReferenceCandidate): boolean {
  if (typeof d.annotations?.[REFERENCE_TYPE] === 'string') return true;
  return d.platform?.os === 'unknown' && d.platform.architecture === 'unknown';
}

/** The platforms of an image as "os/arch[/variant]", once each, references left out. */
export function platformNames(platforms: readonly (Platform | null | undefined)[]): string[] {
  const out: string[] = [];
  for (const p of platforms) {
    if (!p || isReferenceDescriptor({ platform: p })) continue;
    const s = formatPlatform(p);
    if (!out.includes(s)) out.push(s);
  }
  return out;
}
