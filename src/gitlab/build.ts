// Annotations (or, as a fallback, config labels) → the build details that `show`, the API and the
// browser present: who built this image, from which pipeline, job, commit and ref.
import type { Annotations } from '../oci/annotations.js';
import { CI, OCI } from './ci.js';

export interface Build {
  pipeline?: { id: string; url?: string };
  job?: { id?: string; name?: string; url?: string };
  commit?: { sha: string; url?: string };
  ref?: { name: string; kind: 'branch' | 'tag' | 'merge_request' | 'unknown'; url?: string };
  mergeRequest?: { iid: string; url?: string };
  project?: { path?: string; url?: string };
  user?: { id?: string; login?: string };
  /** Where the details came from. */
  source: 'annotations' | 'referrer' | 'labels';
  /** The referrer manifest's digest, when source is referrer. */
  referrer?: string;
}

/** True when the annotations carry build details worth showing (ours or the standard OCI ones). */
export function hasBuildAnnotations(a: Annotations | undefined): boolean {
  if (!a) return false;
  return Object.keys(a).some((k) => k.startsWith(CI) || k === `${OCI}revision` || k === `${OCI}source`);
}

// The OCI image spec's table of Label Schema keys and the annotation keys that replace them.
// schema-version, docker.* and rkt.* have no OCI counterpart and are left out.
const LABEL_FALLBACKS: readonly (readonly [string, string])[] = [
  ['org.label-schema.build-date', `${OCI}created`],
  ['org.label-schema.url', `${OCI}url`],
  ['org.label-schema.vcs-url', `${OCI}source`],
  ['org.label-schema.version', `${OCI}version`],
  ['org.label-schema.vcs-ref', `${OCI}revision`],
  ['org.label-schema.vendor', `${OCI}vendor`],
  ['org.label-schema.name', `${OCI}title`],
  ['org.label-schema.description', `${OCI}description`],
  ['org.label-schema.usage', `${OCI}documentation`],
];

/**
 * Config labels mapped to annotation keys: org.opencontainers.image.* and com.gitlab.ci.* (what
 * `tagtrail flags --format labels` writes) as they are, org.label-schema.* translated, where no
 * OCI label already gives the key. `org.opencontainers.image.ref.name` is left out: on a manifest
 * it names the tag in an OCI layout, which a label copied from a base image must not claim.
 */
export function labelsAsAnnotations(labels: Annotations | undefined): Annotations {
  const out: Annotations = Object.create(null);
  if (!labels) return out;
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string' || k === `${OCI}ref.name`) continue;
    if (k.startsWith(OCI) || k.startsWith(CI)) out[k] = v;
  }
  for (const [from, to] of LABEL_FALLBACKS) {
    const v = labels[from];
    if (typeof v === 'string' && out[to] === undefined) out[to] = v;
  }
  return out;
}

function httpUrl(v: string | undefined): string | undefined {
  if (!v) return undefined;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.toString().replace(/\/+$/, '') : undefined;
  } catch {
    return undefined;
  }
}

/** Encodes each segment of a ref name, keeping the slashes GitLab keeps in its URLs. */
function refPath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

export function buildFromAnnotations(a: Annotations, source: Build['source'] = 'annotations'): Build {
  const get = (k: string): string | undefined => {
    const v = a[k];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const projectUrl = httpUrl(get(`${CI}project_url`) ?? get(`${OCI}source`) ?? get(`${OCI}url`));
  const build: Build = { source };

  const pipelineId = get(`${CI}pipeline_id`);
  if (pipelineId) {
    const url = get(`${CI}pipeline_url`) ?? (projectUrl ? `${projectUrl}/-/pipelines/${encodeURIComponent(pipelineId)}` : undefined);
    build.pipeline = { id: pipelineId, ...(url ? { url } : {}) };
  }
  const jobId = get(`${CI}job_id`);
  const jobName = get(`${CI}job_name`);
  if (jobId || jobName) {
    const url = get(`${CI}job_url`) ?? (projectUrl && jobId ? `${projectUrl}/-/jobs/${encodeURIComponent(jobId)}` : undefined);
    build.job = { ...(jobId ? { id: jobId } : {}), ...(jobName ? { name: jobName } : {}), ...(url ? { url } : {}) };
  }
  const sha = get(`${CI}commit_sha`) ?? get(`${OCI}revision`);
  if (sha) build.commit = { sha, ...(projectUrl ? { url: `${projectUrl}/-/commit/${encodeURIComponent(sha)}` } : {}) };

  const tag = get(`${CI}tag`);
  const branch = get(`${CI}branch`);
  const mrIid = get(`${CI}merge_request_iid`);
  const refName = get(`${CI}commit_ref_name`);
  if (tag) build.ref = { name: tag, kind: 'tag', ...(projectUrl ? { url: `${projectUrl}/-/tags/${refPath(tag)}` } : {}) };
  else if (branch) build.ref = { name: branch, kind: 'branch', ...(projectUrl ? { url: `${projectUrl}/-/tree/${refPath(branch)}` } : {}) };
  else if (refName) build.ref = { name: refName, kind: mrIid ? 'merge_request' : 'unknown' };
  if (mrIid) build.mergeRequest = { iid: mrIid, ...(projectUrl ? { url: `${projectUrl}/-/merge_requests/${encodeURIComponent(mrIid)}` } : {}) };

  const path = get(`${CI}project_path`);
  if (path || projectUrl) build.project = { ...(path ? { path } : {}), ...(projectUrl ? { url: projectUrl } : {}) };
  const userId = get(`${CI}user_id`);
  const login = get(`${CI}user_login`);
  if (userId || login) build.user = { ...(userId ? { id: userId } : {}), ...(login ? { login } : {}) };
  return build;
}
