// Build details are written once. A retried job has a new CI_JOB_ID, and tag, merge request and
// scheduled pipelines of one commit share $CI_COMMIT_SHORT_SHA; stamping again would give the
// image a new digest and claim a build the run did not do. So the pipeline an image already
// names decides: this pipeline (a retry, or a second job) writes no build details; another
// pipeline stops with a conflict naming the one that built it. --overwrite lifts both.
import { ConflictError } from '../errors.js';
import type { Annotations } from '../oci/annotations.js';
import { CI, type Env, isGitLabCi } from './ci.js';

const PIPELINE_ID = `${CI}pipeline_id`;
const PIPELINE_URL = `${CI}pipeline_url`;
const SERVER_URL = `${CI}server_url`;

export interface PipelineClaim {
  readonly id: string;
  readonly url?: string;
  readonly server?: string;
}

/** The pipeline a set of annotations names, if any. */
export function claimedPipeline(a: Annotations | undefined): PipelineClaim | undefined {
  const id = a?.[PIPELINE_ID];
  if (id === undefined || id === '') return undefined;
  return { id, ...(a?.[PIPELINE_URL] ? { url: a[PIPELINE_URL] } : {}), ...(a?.[SERVER_URL] ? { server: a[SERVER_URL] } : {}) };
}

/** This run's pipeline, in a GitLab CI job. */
export function currentPipeline(env: Env): PipelineClaim | undefined {
  if (!isGitLabCi(env) || !env.CI_PIPELINE_ID) return undefined;
  return { id: env.CI_PIPELINE_ID, ...(env.CI_PIPELINE_URL ? { url: env.CI_PIPELINE_URL } : {}), ...(env.CI_SERVER_URL ? { server: env.CI_SERVER_URL } : {}) };
}

function samePipeline(a: PipelineClaim, b: PipelineClaim): boolean {
  // Pipeline IDs are unique per GitLab instance; compare the instance when both name one.
  return a.id === b.id && (a.server === undefined || b.server === undefined || a.server === b.server);
}

function describe(p: PipelineClaim): string {
  return p.url ? `pipeline ${p.id} (${p.url})` : `pipeline ${p.id}`;
}

export type BuildDetailsVerdict = 'write' | 'already-this-pipeline';

/**
 * What a run may do with build details, given what the image (or an existing referrer) already
 * names. Throws a ConflictError (exit 3) when another pipeline built it.
 */
export function buildDetailsVerdict(existing: Annotations | undefined, env: Env, what: string): BuildDetailsVerdict {
  const ours = currentPipeline(env);
  const theirs = claimedPipeline(existing);
  if (ours === undefined || theirs === undefined) return 'write';
  if (samePipeline(ours, theirs)) return 'already-this-pipeline';
  throw new ConflictError(`${what} already carries the build details of ${describe(theirs)}; this is ${describe(ours)}, which did not build it; nothing was written`, {
    hint: 'build details are written once, by the pipeline that built the image; to replace them anyway, run again with --overwrite',
  });
}

export const ALREADY_THIS_PIPELINE = 'already annotated by this pipeline';

/** What a retry or a second job of the same pipeline changes: the job and the time of the run. */
const PER_RUN_KEYS = new Set([`${CI}job_id`, `${CI}job_url`, `${CI}job_name`, 'org.opencontainers.image.created']);

/** The same build details, apart from the job that wrote them and when. */
export function sameBuildApartFromJob(a: Annotations | undefined, b: Annotations): boolean {
  if (!a) return false;
  const keys = (x: Annotations) => Object.keys(x).filter((k) => !PER_RUN_KEYS.has(k)).sort();
  const ka = keys(a);
  const kb = keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}
