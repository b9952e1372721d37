// An image's config blob, read for its labels. Configs are small JSON documents; the blob is
// checked against its digest and capped in size like a manifest.
import { InvalidInputError } from '../errors.js';
import { type Annotations, emptyAnnotations } from './annotations.js';
import type { ImageManifest } from './manifest.js';
import { DOCKER_CONFIG, OCI_CONFIG } from './mediatypes.js';
import type { RegistryClient } from './registry.js';

const CONFIG_MAX_BYTES = 4 * 1024 * 1024;

/** True when the manifest's config is an image config (an artifact's config has no labels to read). */
function hasImageConfig(m: ImageManifest): boolean {
  return m.config.mediaType === OCI_CONFIG || m.config.mediaType === DOCKER_CONFIG;
}

/** The string labels of a parsed image config's `config.Labels`; undefined when it has no such object. */
export function labelsOfConfig(json: unknown): Annotations | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const config = (json as { config?: unknown }).config;
  const labels = typeof config === 'object' && config !== null ? (config as { Labels?: unknown }).Labels : undefined;
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return undefined;
  const out = emptyAnnotations();
  for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** The string labels of an image config's `config.Labels`; empty when it has none. */
export function parseConfigLabels(bytes: Uint8Array, where: string): Annotations {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new InvalidInputError('INVALID_MANIFEST', `the config blob of ${where} is not JSON`, {
      hint: 'the image config is damaged; rebuild and push the image, or annotate without --from-labels',
    });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidInputError('INVALID_MANIFEST', `the config blob of ${where} is not a JSON object`, {
      hint: 'the image config is damaged; rebuild and push the image, or annotate without --from-labels',
    });
  }
  return labelsOfConfig(json) ?? emptyAnnotations();
}

/** Reads the config blob of an image manifest (one blob GET) and returns its labels. */
export async function readConfigLabels(client: RegistryClient, registry: string, repository: string, m: ImageManifest): Promise<Annotations> {
  if (!hasImageConfig(m)) return emptyAnnotations();
  const blob = await client.getBlob(registry, repository, m.config.digest, CONFIG_MAX_BYTES);
  return parseConfigLabels(blob, `${repository}@${m.digest}`);
}
