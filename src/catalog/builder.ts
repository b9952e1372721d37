// Which tool built an image, from what the tool leaves behind in the manifest and, when it was
// read, the config blob. Pure: no I/O, never throws, whatever JSON it is given. Each rule and the
// builder output it relies on is listed in docs/insights.md; the `evidence` strings name the
// signal that matched so that a surprising answer can be checked by hand.
//
// Order matters. A config's history and labels accumulate over the base images, so the newest
// history entry (the image's own last step) decides first; labels that every tool inherits from a
// base come after it; manifest-level signals that only the last writer could have put there
// (attestation manifests in an index) come before everything.

import { ATTESTATION_REFERENCE, REFERENCE_TYPE } from '../oci/manifest.js';

export const BUILDERS = ['buildkit', 'kaniko', 'buildah', 'docker', 'jib', 'ko', 'unknown', 'unread'] as const;
/** `unknown`: the evidence read says nothing; `unread`: nothing at manifest level, and the config was not read. */
export type Builder = (typeof BUILDERS)[number];
export type Confidence = 'high' | 'medium' | 'low' | 'none';

export interface BuilderResult {
  builder: Builder;
  /** Which signal matched, e.g. `history[3].comment=buildkit.dockerfile.v0`. Empty for unknown/unread. */
  evidence: string[];
  confidence: Confidence;
}

interface BuilderInput {
  /** The manifest's JSON, parsed (anything: bad input gives unknown, never an error). */
  manifest: unknown;
  /** The manifest's media type as the registry served it. */
  mediaType?: string;
  /** The manifest's own annotations (also in `manifest`, but callers may have them cleaned). */
  annotations?: Readonly<Record<string, string>>;
  /** For an index: what was decided for its platform manifests. */
  children?: readonly BuilderResult[];
  /** The config blob's JSON, parsed, when it was read. */
  config?: unknown;
  /** The config's labels when only they are known (the catalog keeps labels, not whole configs). */
  labels?: Readonly<Record<string, string>>;
  /** True when the config (or its labels) was read: `unknown` then, else `unread`. */
  configRead?: boolean;
}

const BUILDAH_VERSION_LABEL = 'io.buildah.version';
const BASE_NAME = 'org.opencontainers.image.base.name';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function has(o: Obj | undefined, key: string): boolean {
  return o !== undefined && Object.prototype.hasOwnProperty.call(o, key);
}

/** Shortens a value for an evidence line. */
function shown(v: string, max = 60): string {
  const oneLine = v.replace(/\s+/g, ' ');
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

function stringRecord(v: unknown): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const o = obj(v);
  if (!o) return out;
  for (const [k, val] of Object.entries(o)) if (typeof val === 'string') out[k] = val;
  return out;
}

function result(builder: Builder, confidence: Confidence, ...evidence: string[]): BuilderResult {
  return { builder, confidence, evidence };
}

/** Signals of one history entry, the image's newest step. */
function fromHistoryEntry(entry: Obj, i: number, labels: Record<string, string>, config: Obj): BuilderResult | undefined {
  const comment = str(entry.comment) ?? '';
  const createdBy = str(entry.created_by) ?? '';
  const author = str(entry.author) ?? '';
  if (comment.startsWith('buildkit.')) return result('buildkit', 'high', `history[${i}].comment=${shown(comment)}`);
  if (/ # buildkit$/.test(createdBy)) return result('buildkit', 'high', `history[${i}].created_by ends with "# buildkit"`);
  if (author === 'kaniko') return result('kaniko', 'high', `history[${i}].author=kaniko`);
  if (/^jib-(maven-plugin|gradle-plugin|core|cli)\b/.test(createdBy)) return result('jib', 'high', `history[${i}].created_by=${shown(createdBy)}`);
  if (author === 'Jib') return result('jib', 'high', `history[${i}].author=Jib`);
  if (author === 'ko' || /^ko (build|publish|resolve|apply)\b/.test(createdBy)) {
    return result('ko', 'high', author === 'ko' ? `history[${i}].author=ko` : `history[${i}].created_by=${shown(createdBy)}`);
  }
  if (createdBy.includes('#(nop)')) {
    const nop = `history[${i}].created_by has "#(nop)"`;
    if (labels[BUILDAH_VERSION_LABEL] !== undefined) return result('buildah', 'high', nop, `config label ${BUILDAH_VERSION_LABEL}=${shown(labels[BUILDAH_VERSION_LABEL])}`);
    const dockerVersion = str(config.docker_version);
    if (dockerVersion) return result('docker', 'high', nop, `config docker_version=${shown(dockerVersion)}`);
    if (has(config, 'container_config')) return result('docker', 'high', nop, 'config has container_config');
    return result('docker', 'medium', nop);
  }
  return undefined;
}

/** Signals of the config as a whole (labels, top-level keys), after the newest history entry. */
function fromConfig(config: Obj, labels: Record<string, string>): BuilderResult | undefined {
  const buildah = labels[BUILDAH_VERSION_LABEL];
  if (buildah !== undefined) return result('buildah', 'high', `config label ${BUILDAH_VERSION_LABEL}=${shown(buildah)}`);
  for (const key of Object.keys(config)) if (key.startsWith('moby.buildkit.')) return result('buildkit', 'high', `config key ${shown(key)}`);
  for (const key of Object.keys(labels)) if (key.startsWith('moby.buildkit.')) return result('buildkit', 'high', `config label ${shown(key)}`);
  const author = str(config.author) ?? '';
  if (/(^|\/)ko(-build)?\/ko$|^github\.com\/google\/ko$/.test(author)) return result('ko', 'high', `config author=${shown(author)}`);
  const dockerVersion = str(config.docker_version);
  if (dockerVersion) return result('docker', 'medium', `config docker_version=${shown(dockerVersion)}`);
  return undefined;
}

function fromIndex(manifest: Obj, children: readonly BuilderResult[]): BuilderResult | undefined {
  const list = Array.isArray(manifest.manifests) ? manifest.manifests : [];
  for (let i = 0; i < list.length; i++) {
    const d = obj(list[i]);
    const a = stringRecord(d?.annotations);
    if (a[REFERENCE_TYPE] === ATTESTATION_REFERENCE) return result('buildkit', 'high', `manifests[${i}] is an attestation manifest (${REFERENCE_TYPE}=${ATTESTATION_REFERENCE})`);
  }
  const known = children.filter((c) => c.builder !== 'unknown' && c.builder !== 'unread');
  if (known.length === 0) {
    if (children.length > 0 && children.every((c) => c.builder === 'unread')) return result('unread', 'none');
    return undefined;
  }
  const counts = new Map<Builder, number>();
  for (const c of known) counts.set(c.builder, (counts.get(c.builder) ?? 0) + 1);
  const [builder, n] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]!;
  const first = known.find((c) => c.builder === builder)!;
  const confidence: Confidence = n === children.length ? first.confidence : 'medium';
  return result(builder, confidence, `${n} of ${children.length} platform manifests: ${builder}`, ...first.evidence.map((e) => `platform manifest: ${e}`));
}

/** Decides the builder of one manifest. Never throws. */
export function detectBuilder(input: BuilderInput): BuilderResult {
  try {
    return detect(input);
  } catch {
    return result(input.configRead ? 'unknown' : 'unread', 'none');
  }
}

function detect(input: BuilderInput): BuilderResult {
  const manifest = obj(input.manifest) ?? {};
  const annotations = { ...stringRecord(manifest.annotations), ...stringRecord(input.annotations) };
  const isIndex = Array.isArray(manifest.manifests);

  if (isIndex) {
    const decided = fromIndex(manifest, input.children ?? []);
    if (decided) return decided;
  }
  for (const key of Object.keys(annotations)) if (key.startsWith('moby.buildkit.')) return result('buildkit', 'high', `manifest annotation ${shown(key)}`);

  const config = obj(input.config);
  const labels = { ...stringRecord(input.labels), ...stringRecord(obj(config?.config)?.Labels) };
  if (config) {
    const history = Array.isArray(config.history) ? config.history : [];
    for (let i = history.length - 1; i >= 0; i--) {
      const entry = obj(history[i]);
      if (!entry) continue;
      const decided = fromHistoryEntry(entry, i, labels, config);
      if (decided) return decided;
      break; // only the newest entry speaks for this image; older ones may be the base's
    }
  }
  const byConfig = fromConfig(config ?? {}, labels);
  if (byConfig) return byConfig;

  // buildah writes both base annotations on every image it commits, empty when FROM scratch.
  // ko writes them too (never empty), so alone they are a weak signal.
  if (!isIndex && annotations[BASE_NAME] !== undefined && annotations[BASE_DIGEST] !== undefined) {
    const empty = annotations[BASE_NAME] === '' && annotations[BASE_DIGEST] === '';
    return result('buildah', empty ? 'medium' : 'low', `manifest annotations ${BASE_NAME} and ${BASE_DIGEST}${empty ? ', both empty' : ''}`);
  }
  const read = input.configRead === true || config !== undefined || input.labels !== undefined;
  return result(isIndex || read ? 'unknown' : 'unread', 'none');
}
