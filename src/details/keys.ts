// Which annotation keys carry build details, and what each means. tagtrail writes its own
// underscore keys (gitlab/ci.ts); GitLab's cosign tutorial writes dotted ones
// (com.gitlab.ci.pipeline.id, …). Where an underscore key is absent its dotted twin is read in its
// place: by `show`, the API, the browser and the catalog's search alike, all through this module.
import { type Annotations, OCI_PREFIX, emptyAnnotations } from '../oci/annotations.js';
import { CI } from '../gitlab/ci.js';

/** GitLab's dotted key → the key tagtrail writes for the same value. */
export const DOTTED_KEYS: readonly (readonly [dotted: string, ours: string])[] = [
  [`${CI}pipeline.id`, `${CI}pipeline_id`],
  [`${CI}pipeline.url`, `${CI}pipeline_url`],
  [`${CI}job.id`, `${CI}job_id`],
  [`${CI}job.url`, `${CI}job_url`],
  [`${CI}commit.sha`, `${CI}commit_sha`],
  [`${CI}commit.ref.name`, `${CI}commit_ref_name`],
  [`${CI}project.path`, `${CI}project_path`],
  [`${CI}user.name`, `${CI}user_name`],
];

/** The keys a search by commit (a prefix of the SHA), pipeline or ref reads, after readDottedKeys. */
export const COMMIT_KEYS: readonly string[] = [`${CI}commit_sha`, `${OCI_PREFIX}revision`];
export const PIPELINE_KEY = `${CI}pipeline_id`;
export const REF_KEY = `${CI}commit_ref_name`;

/** The annotations with each dotted key's value copied to its underscore key, where that is absent. */
export function readDottedKeys(a: Annotations): Annotations {
  if (!DOTTED_KEYS.some(([dotted]) => typeof a[dotted] === 'string')) return a;
  const out = emptyAnnotations();
  Object.assign(out, a);
  for (const [dotted, ours] of DOTTED_KEYS) {
    const v = a[dotted];
    if (typeof v === 'string' && out[ours] === undefined) out[ours] = v;
  }
  return out;
}

/**
 * The same rule over (key, value) pairs that may repeat a key (the catalog's search terms of an
 * image and its platform manifests): the pairs of an underscore key none of them has, taken from
 * its dotted twin.
 */
export function dottedTermsRead(terms: readonly (readonly [string, string])[]): [string, string][] {
  const keys = new Set(terms.map(([k]) => k));
  const out: [string, string][] = [];
  for (const [dotted, ours] of DOTTED_KEYS) {
    if (keys.has(ours) || !keys.has(dotted)) continue;
    for (const [k, v] of terms) if (k === dotted) out.push([ours, v]);
  }
  return out;
}

/** True when the annotations carry build details worth showing (ours, GitLab's dotted ones or the standard OCI ones). */
export function hasBuildAnnotations(a: Annotations | undefined): boolean {
  if (!a) return false;
  return Object.keys(a).some((k) => k.startsWith(CI) || k === `${OCI_PREFIX}revision` || k === `${OCI_PREFIX}source`);
}

// The OCI image spec's table of Label Schema keys and the annotation keys that replace them.
// schema-version, docker.* and rkt.* have no OCI counterpart and are left out.
const LABEL_SCHEMA_KEYS: readonly (readonly [string, string])[] = [
  ['org.label-schema.build-date', `${OCI_PREFIX}created`],
  ['org.label-schema.url', `${OCI_PREFIX}url`],
  ['org.label-schema.vcs-url', `${OCI_PREFIX}source`],
  ['org.label-schema.version', `${OCI_PREFIX}version`],
  ['org.label-schema.vcs-ref', `${OCI_PREFIX}revision`],
  ['org.label-schema.vendor', `${OCI_PREFIX}vendor`],
  ['org.label-schema.name', `${OCI_PREFIX}title`],
  ['org.label-schema.description', `${OCI_PREFIX}description`],
  ['org.label-schema.usage', `${OCI_PREFIX}documentation`],
];

/**
 * Config labels mapped to annotation keys: org.opencontainers.image.* and com.gitlab.ci.* (what
 * `tagtrail flags --format labels` writes) as they are, org.label-schema.* translated, where no
 * OCI label already gives the key. `org.opencontainers.image.ref.name` is left out: on a manifest
 * it names the tag in an OCI layout, which a label copied from a base image must not claim.
 */
export function labelsAsAnnotations(labels: Annotations | undefined): Annotations {
  const out = emptyAnnotations();
  if (!labels) return out;
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string' || k === `${OCI_PREFIX}ref.name`) continue;
    if (k.startsWith(OCI_PREFIX) || k.startsWith(CI)) out[k] = v;
  }
  for (const [from, to] of LABEL_SCHEMA_KEYS) {
    const v = labels[from];
    if (typeof v === 'string' && out[to] === undefined) out[to] = v;
  }
  return out;
}
