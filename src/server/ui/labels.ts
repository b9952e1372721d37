// Plain-word names for the annotation keys people meet most: the OCI image spec's pre-defined
// keys and the com.gitlab.ci.* set tagtrail writes. Other keys are shown as they are.
import { CI } from '../../gitlab/ci.js';
import { OCI_PREFIX as OCI } from '../../oci/annotations.js';

const NAMES: Readonly<Record<string, string>> = {
  [`${OCI}created`]: 'Created',
  [`${OCI}authors`]: 'Authors',
  [`${OCI}url`]: 'Home page',
  [`${OCI}documentation`]: 'Documentation',
  [`${OCI}source`]: 'Source code',
  [`${OCI}version`]: 'Version',
  [`${OCI}revision`]: 'Source revision (commit)',
  [`${OCI}vendor`]: 'Vendor',
  [`${OCI}licenses`]: 'Licenses',
  [`${OCI}ref.name`]: 'Reference name',
  [`${OCI}title`]: 'Title',
  [`${OCI}description`]: 'Description',
  [`${OCI}base.digest`]: 'Base image digest',
  [`${OCI}base.name`]: 'Base image',
  [`${CI}pipeline_id`]: 'Pipeline ID',
  [`${CI}pipeline_iid`]: 'Pipeline number in the project',
  [`${CI}pipeline_url`]: 'Pipeline',
  [`${CI}pipeline_source`]: 'Pipeline started by',
  [`${CI}job_id`]: 'Job ID',
  [`${CI}job_name`]: 'Job name',
  [`${CI}job_url`]: 'Job',
  [`${CI}project_id`]: 'Project ID',
  [`${CI}project_path`]: 'Project path',
  [`${CI}project_url`]: 'Project',
  [`${CI}server_url`]: 'GitLab server',
  [`${CI}commit_sha`]: 'Commit SHA',
  [`${CI}commit_ref_name`]: 'Branch or tag name',
  [`${CI}commit_timestamp`]: 'Commit time',
  [`${CI}branch`]: 'Branch',
  [`${CI}tag`]: 'Git tag',
  [`${CI}merge_request_iid`]: 'Merge request',
  [`${CI}user_id`]: 'User ID',
  [`${CI}user_login`]: 'User',
  'vnd.docker.reference.digest': 'Attestation for manifest',
  'vnd.docker.reference.type': 'Reference type',
};

/** The plain-word name of a key, or undefined for a key without one. */
export function annotationLabel(key: string): string | undefined {
  return Object.hasOwn(NAMES, key) ? NAMES[key] : undefined;
}

/** Known keys first, in the order above, then the rest by name. */
export function sortAnnotationKeys(keys: readonly string[]): string[] {
  const order = Object.keys(NAMES);
  const rank = (k: string): number => {
    const i = order.indexOf(k);
    return i < 0 ? order.length : i;
  };
  return [...keys].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}
