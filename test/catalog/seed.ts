// Images the catalog suites push into a real registry, one set per repository prefix:
//   PREFIX/app:v1      one image, GitLab CI annotations on the manifest
//   PREFIX/multi:v2    an OCI index (amd64, arm64, each with an attestation), annotations on the index only
//   PREFIX/labels:v3   one image whose build details are only config labels
//   PREFIX/plain:latest  one image with neither
import { randomBytes } from 'node:crypto';
import type { ManifestRecord } from '../../src/catalog/types.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { makeTempDir } from '../helpers/cleanup.js';
import { makeImage, makeIndex, pushImage } from '../helpers/images.js';

export function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * A small OCI image manifest as the store takes it, without a registry: no layers, its config
 * the digest of `configSeed`, these annotations. Distinct seeds or annotations, distinct digests.
 */
export function manifestRecord(configSeed: string, annotations: Record<string, string>): ManifestRecord {
  const config = sha256Digest(Buffer.from(configSeed));
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config, size: 2 }, layers: [], annotations }));
  return { digest: sha256Digest(raw), mediaType: OCI_MANIFEST, raw, configDigest: config, annotations };
}

export interface Seeded {
  prefix: string;
  app: { repository: string; tag: string; digest: string; commit: string; pipeline: string; ref: string };
  multi: { repository: string; tag: string; digest: string; children: string[]; attestations: string[]; commit: string; pipeline: string };
  labels: { repository: string; tag: string; digest: string; revision: string };
  plain: { repository: string; tag: string; digest: string };
}

export function ciAnnotations(commit: string, pipeline: string, ref: string): Record<string, string> {
  return {
    'com.gitlab.ci.commit_sha': commit,
    'com.gitlab.ci.pipeline_id': pipeline,
    'com.gitlab.ci.commit_ref_name': ref,
    'com.gitlab.ci.branch': ref,
    'com.gitlab.ci.project_url': 'https://gitlab.example.com/group/app',
    'com.gitlab.ci.job_name': 'build',
    'org.opencontainers.image.revision': commit,
  };
}

export async function seedRegistry(host: string, prefix: string): Promise<Seeded> {
  const dir = await makeTempDir('seed');
  const appCommit = hex(20);
  const appPipeline = String(100000 + Math.floor(Math.random() * 899999));
  const app = await makeImage(`${dir}/app`, { manifestAnnotations: ciAnnotations(appCommit, appPipeline, 'main'), tag: 'v1' });
  const appDigest = await pushImage(app, `${host}/${prefix}/app:v1`);

  const multiCommit = hex(20);
  const multiPipeline = String(100000 + Math.floor(Math.random() * 899999));
  const multi = await makeIndex(`${dir}/multi`, { attestations: true, indexAnnotations: ciAnnotations(multiCommit, multiPipeline, 'release'), tag: 'v2' });
  const multiDigest = await pushImage(multi, `${host}/${prefix}/multi:v2`);

  const revision = hex(20);
  const labelled = await makeImage(`${dir}/labels`, {
    labels: { 'org.opencontainers.image.revision': revision, 'org.opencontainers.image.source': 'https://gitlab.example.com/group/labels', maintainer: 'someone' },
    tag: 'v3',
  });
  const labelsDigest = await pushImage(labelled, `${host}/${prefix}/labels:v3`);

  const plain = await makeImage(`${dir}/plain`, { tag: 'latest' });
  const plainDigest = await pushImage(plain, `${host}/${prefix}/plain:latest`);

  return {
    prefix,
    app: { repository: `${prefix}/app`, tag: 'v1', digest: appDigest, commit: appCommit, pipeline: appPipeline, ref: 'main' },
    multi: {
      repository: `${prefix}/multi`,
      tag: 'v2',
      digest: multiDigest,
      children: multi.images.map((i) => i.digest),
      attestations: multi.attestations.map((a) => a.digest),
      commit: multiCommit,
      pipeline: multiPipeline,
    },
    labels: { repository: `${prefix}/labels`, tag: 'v3', digest: labelsDigest, revision },
    plain: { repository: `${prefix}/plain`, tag: 'latest', digest: plainDigest },
  };
}
