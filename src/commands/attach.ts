// tagtrail attach IMAGE...: a thin layer over oci/attach.
import { UsageError } from '../errors.js';
import { annotationChanges } from '../gitlab/annotation-set.js';
import { isGitLabCi } from '../gitlab/ci.js';
import { type AttachResult, attachBuildDetails } from '../oci/attach.js';
import { type Reference, formatReference } from '../oci/reference.js';
import { type ReferrersMode, fallbackTag } from '../oci/referrers.js';
import { inertText } from '../inert-text.js';
import type { Runtime } from '../runtime.js';
import { type RegistryFlags, forEachImage, jsonOutput, parseImageArguments, registryClient, withSchemes } from './common.js';

interface AttachFlags extends RegistryFlags {
  annotation: string[];
  removeAnnotation: string[];
  ci: boolean;
  dryRun?: boolean;
  verify: boolean;
  referrersApi: ReferrersMode;
  output: 'text' | 'json' | 'dotenv';
}

function jsonResult(r: AttachResult): Record<string, unknown> {
  return {
    image: r.image,
    subject: r.subject,
    referrer: r.referrer,
    changed: r.changed,
    dryRun: r.dryRun,
    path: r.path,
    ...(r.fallbackTag ? { fallbackTag: r.fallbackTag } : {}),
    annotations: { ...r.annotations },
  };
}

function textResult(r: AttachResult, out: string[]): void {
  const subject = `${r.registry}/${r.repository}@${r.subject.digest}`;
  const referrer = `${r.registry}/${r.repository}@${r.referrer}`;
  const via = r.path === 'api' ? "the registry's referrers API" : `the referrers tag ${r.repository}:${fallbackTag(r.subject.digest)}`;
  if (r.dryRun) {
    out.push(r.changed ? `${r.image}: would attach build details as ${referrer}, listed through ${via}` : `${r.image}: build details already attached as ${referrer}; nothing to write`);
    for (const k of Object.keys(r.annotations).sort()) out.push(`    ${inertText(k)}=${JSON.stringify(r.annotations[k])}`);
    out.push(`  subject (unchanged): ${subject}`);
    return;
  }
  out.push(r.changed ? `attached build details to ${r.image}` : `${r.image} already has these build details attached; nothing written`);
  out.push(`  subject (unchanged): ${subject}`, `  referrer:            ${referrer}`, `  listed through:      ${via}`);
}

/**
 * The dotenv report of a CI job, as annotate's: the digest stays, so TAGTRAIL_DIGEST_BEFORE and
 * TAGTRAIL_DIGEST are the same, and TAGTRAIL_REFERRER names the referrer.
 */
function dotenvResult(results: readonly AttachResult[]): string[] {
  const lines: string[] = [];
  results.forEach((r, i) => {
    const vars = {
      TAGTRAIL_DIGEST_BEFORE: r.subject.digest,
      TAGTRAIL_DIGEST: r.subject.digest,
      TAGTRAIL_IMAGE: `${r.registry}/${r.repository}@${r.subject.digest}`,
      TAGTRAIL_REFERRER: r.referrer,
    };
    if (i === 0) for (const [k, v] of Object.entries(vars)) lines.push(`${k}=${v}`);
    if (results.length > 1) for (const [k, v] of Object.entries(vars)) lines.push(`${k}_${i + 1}=${v}`);
  });
  return lines;
}

export async function run(rt: Runtime, args: unknown[], opts: Record<string, unknown>): Promise<number> {
  const flags = opts as unknown as AttachFlags;
  const images = (args[0] as string[] | undefined) ?? [];

  // Check every input before the first request, so bad input never leaves half the images done.
  const parsed = parseImageArguments(images);
  const refs: Reference[] = parsed.refs;
  const changes = annotationChanges({ env: rt.env, now: rt.now(), annotations: flags.annotation, remove: flags.removeAnnotation, ci: flags.ci });
  if (Object.keys(changes.set).length === 0) {
    throw new UsageError(flags.ci && !isGitLabCi(rt.env) ? 'no build details to attach: this is not a GitLab CI job and no --annotation was given' : 'no build details to attach', {
      hint: 'run it in a GitLab CI job (CI_PIPELINE_ID is set there), or pass --annotation KEY=VALUE',
    });
  }
  const client = await registryClient(rt, withSchemes(flags, parsed), refs.map((r) => r.registry));

  const out: string[] = [];
  const warn: string[] = [];
  const { results, exitCode } = await forEachImage(rt, refs, async (ref) => {
    const r = await attachBuildDetails(client, ref, { changes, now: rt.now(), dryRun: flags.dryRun ?? false, mode: flags.referrersApi, verify: flags.verify });
    if (flags.output === 'text') textResult(r, out);
    for (const w of r.warnings) warn.push(`warning: ${formatReference(ref)}: ${inertText(w)}`);
    return r;
  });
  if (flags.output === 'json' && results.length > 0) out.push(jsonOutput(results, refs.length, jsonResult));
  if (flags.output === 'dotenv' && results.length > 0) out.push(...dotenvResult(results));
  if (out.length > 0) rt.stdout.write(`${out.join('\n')}\n`);
  if (warn.length > 0) rt.stderr.write(`${warn.join('\n')}\n`);
  return exitCode;
}
