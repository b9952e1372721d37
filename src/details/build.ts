// The build details of an image, decided here for `show`, the API, the browser and the catalog:
// who built it, from which pipeline, job, commit and ref. The precedence (resolveBuild): the
// image's own annotations (an index's, then its platform manifests'), else the newest
// build-details referrer of its own repository, else its config labels.
import { type Annotations, OCI_PREFIX as OCI, emptyAnnotations } from '../oci/annotations.js';
import { CI } from '../gitlab/ci.js';
import { type Platform, isReferenceDescriptor } from '../oci/manifest.js';
import { hasBuildAnnotations, labelsAsAnnotations, readDottedKeys } from './keys.js';

export interface Build {
  pipeline?: { id: string; url?: string };
  job?: { id?: string; name?: string; url?: string };
  commit?: { sha: string; url?: string };
  ref?: { name: string; kind: 'branch' | 'tag' | 'merge_request' | 'unknown'; url?: string };
  mergeRequest?: { iid: string; url?: string };
  project?: { path?: string; url?: string };
  user?: { id?: string; login?: string; name?: string };
  /** Where the details came from. */
  source: 'annotations' | 'referrer' | 'labels';
  /** The referrer manifest's digest, when source is referrer. */
  referrer?: string;
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

/** The build details the annotations carry (see keys.ts for which keys say what). */
export function buildFromAnnotations(annotations: Annotations, source: Build['source'] = 'annotations'): Build {
  const a = readDottedKeys(annotations);
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
  const name = get(`${CI}user_name`);
  if (userId || login || name) build.user = { ...(userId ? { id: userId } : {}), ...(login ? { login } : {}), ...(name ? { name } : {}) };
  return build;
}

/** An index's annotations, then keys of its platform manifests it lacks (the first to give a key wins). */
export function mergeAnnotations(top: Annotations, children: readonly Annotations[]): Annotations {
  const out = emptyAnnotations();
  Object.assign(out, top);
  for (const c of children) for (const [k, v] of Object.entries(c)) if (!(k in out)) out[k] = v;
  return out;
}

/**
 * mergeAnnotations over an index's children as the catalog lists them: reference manifests
 * (attestations: isReferenceDescriptor) and children not read are left out.
 */
export function mergeIndexAnnotations(top: Annotations, children: readonly { annotations: Annotations | null; platform: Platform | null }[]): Annotations {
  return mergeAnnotations(
    top,
    children.filter((c) => c.annotations !== null && !isReferenceDescriptor({ platform: c.platform })).map((c) => c.annotations as Annotations),
  );
}

interface BuildEvidence {
  /** The image's own annotations (for an index, merged with its platform manifests': mergeAnnotations). */
  annotations: Annotations;
  /**
   * Its build-details referrers, newest first, each taken from the image's own repository: a
   * referrer listed elsewhere never counts (catalog/sql/referrers.ts, oci/referrers.ts).
   */
  referrers?: readonly { digest: string; annotations: Annotations }[];
  /** Its config labels already mapped to annotation keys (labelsAsAnnotations), when read. */
  labelAnnotations?: Annotations | null;
}

/**
 * The one precedence of build details: the image's own annotations; else the newest referrer
 * with build details, which never outranks the image's own whatever `created` it claims; else
 * the config labels; else none.
 */
export function resolveBuild(e: BuildEvidence): Build | null {
  if (hasBuildAnnotations(e.annotations)) return buildFromAnnotations(e.annotations);
  const referrer = e.referrers?.find((r) => hasBuildAnnotations(r.annotations));
  if (referrer) return { ...buildFromAnnotations(referrer.annotations, 'referrer'), referrer: referrer.digest };
  if (e.labelAnnotations && hasBuildAnnotations(e.labelAnnotations)) return buildFromAnnotations(e.labelAnnotations, 'labels');
  return null;
}

export const BUILD_SOURCES = ['annotations', 'referrer', 'labels', 'none'] as const;
/** Where an image's build details come from (the order of resolveBuild), as the insights count it. */
export type BuildSource = (typeof BUILD_SOURCES)[number];

interface SourceEvidence {
  /** The manifest's own annotations. */
  annotations: Annotations;
  /** Config labels, when read. */
  labels?: Annotations;
  /** For an index: the sources decided for its platform manifests. */
  children?: readonly BuildSource[];
  /** True when a referrer carrying build details is recorded against this manifest. */
  referrer?: boolean;
}

/** The build-details source of one manifest from what the catalog stores of it, in resolveBuild's order. */
export function buildDetailsSource(e: SourceEvidence): BuildSource {
  const children = e.children ?? [];
  if (hasBuildAnnotations(e.annotations) || children.includes('annotations')) return 'annotations';
  if (e.referrer === true || children.includes('referrer')) return 'referrer';
  if ((e.labels && hasBuildAnnotations(labelsAsAnnotations(e.labels))) || children.includes('labels')) return 'labels';
  return 'none';
}
