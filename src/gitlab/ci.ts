// GitLab CI predefined variables → OCI annotations. An allow-list: nothing outside it is ever
// stamped, so job tokens, passwords, commit messages and e-mail addresses cannot leak in.
import { InvalidInputError } from '../errors.js';
import { type Annotations, CREATED_KEY, OCI_PREFIX, emptyAnnotations, rfc3339 } from '../oci/annotations.js';

export type Env = Readonly<Record<string, string | undefined>>;

export const CI = 'com.gitlab.ci.';

/** annotation key → the CI variable it comes from. */
const CI_VARIABLE_ANNOTATIONS: readonly (readonly [string, string])[] = [
  [`${CI}pipeline_id`, 'CI_PIPELINE_ID'],
  [`${CI}pipeline_iid`, 'CI_PIPELINE_IID'],
  [`${CI}pipeline_url`, 'CI_PIPELINE_URL'],
  [`${CI}pipeline_source`, 'CI_PIPELINE_SOURCE'],
  [`${CI}job_id`, 'CI_JOB_ID'],
  [`${CI}job_name`, 'CI_JOB_NAME'],
  [`${CI}job_url`, 'CI_JOB_URL'],
  [`${CI}project_id`, 'CI_PROJECT_ID'],
  [`${CI}project_path`, 'CI_PROJECT_PATH'],
  [`${CI}project_url`, 'CI_PROJECT_URL'],
  [`${CI}server_url`, 'CI_SERVER_URL'],
  [`${CI}commit_sha`, 'CI_COMMIT_SHA'],
  [`${CI}commit_ref_name`, 'CI_COMMIT_REF_NAME'],
  [`${CI}commit_timestamp`, 'CI_COMMIT_TIMESTAMP'],
  [`${CI}branch`, 'CI_COMMIT_BRANCH'],
  [`${CI}tag`, 'CI_COMMIT_TAG'],
  [`${CI}merge_request_iid`, 'CI_MERGE_REQUEST_IID'],
  [`${CI}user_id`, 'GITLAB_USER_ID'],
  [`${CI}user_login`, 'GITLAB_USER_LOGIN'],
  [`${OCI_PREFIX}source`, 'CI_PROJECT_URL'],
  [`${OCI_PREFIX}url`, 'CI_PROJECT_URL'],
  [`${OCI_PREFIX}revision`, 'CI_COMMIT_SHA'],
  [`${OCI_PREFIX}version`, 'CI_COMMIT_TAG'],
];

const TITLE_KEY = `${OCI_PREFIX}title`;

/** Variables whose values must never appear in an annotation. */
const SECRET_VARIABLES = [
  'CI_JOB_TOKEN',
  'CI_REGISTRY_PASSWORD',
  'CI_DEPENDENCY_PROXY_PASSWORD',
  'CI_DEPLOY_PASSWORD',
  'CI_JOB_JWT',
  'CI_JOB_JWT_V1',
  'CI_JOB_JWT_V2',
  'TAGTRAIL_REGISTRY_PASSWORD',
  'DOCKER_AUTH_CONFIG',
];

function value(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** GitLab CI is detected by CI_PIPELINE_ID or CI_SERVER_URL, not only GITLAB_CI=true. */
export function isGitLabCi(env: Env): boolean {
  return value(env, 'CI_PIPELINE_ID') !== undefined || value(env, 'CI_SERVER_URL') !== undefined || env.GITLAB_CI === 'true';
}

/** Drops user:password@ from a URL, should a runner ever put one there. */
function withoutUserinfo(v: string): string {
  try {
    const u = new URL(v);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
      return u.toString();
    }
  } catch {
    // not a URL: keep as is
  }
  return v;
}

interface CiAnnotations {
  /** Keys that always take the run's value. */
  readonly set: Annotations;
  /** Keys kept from the manifest when already there: the creation time, so a re-run changes nothing. */
  readonly setIfAbsent: Annotations;
}

/** The CI annotation set for this run, or empty sets outside GitLab CI. */
export function ciAnnotations(env: Env, now: Date): CiAnnotations {
  const set = emptyAnnotations();
  const setIfAbsent = emptyAnnotations();
  if (!isGitLabCi(env)) return { set, setIfAbsent };
  for (const [key, variable] of CI_VARIABLE_ANNOTATIONS) {
    const v = value(env, variable);
    if (v !== undefined) set[key] = key.endsWith('_url') || key === `${OCI_PREFIX}source` || key === `${OCI_PREFIX}url` ? withoutUserinfo(v) : v;
  }
  const title = value(env, 'CI_PROJECT_TITLE') ?? value(env, 'CI_PROJECT_NAME');
  if (title !== undefined) set[TITLE_KEY] = title;
  setIfAbsent[CREATED_KEY] = rfc3339(now);
  return { set, setIfAbsent };
}


/** Refuses an annotation that would carry the value of a secret CI variable. Names the key, never the value. */
export function assertNoSecrets(annotations: Annotations, env: Env): void {
  const secrets = SECRET_VARIABLES.map((n) => value(env, n)).filter((v): v is string => v !== undefined && v.length >= 8);
  for (const [k, v] of Object.entries(annotations)) {
    for (const s of secrets) {
      if (v.includes(s)) {
        throw new InvalidInputError('INVALID_ANNOTATION', `annotation ${JSON.stringify(k)} holds the value of a secret CI variable`, {
          hint: 'never stamp tokens or passwords into an image; remove that annotation',
        });
      }
    }
  }
}
