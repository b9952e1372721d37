// tagtrail attach IMAGE...: a thin layer over oci/attach.
import { UsageError } from '../errors.js';
import { annotationChanges } from '../gitlab/annotation-set.js';
import { ALREADY_THIS_PIPELINE, buildDetailsVerdict, sameBuildApartFromJob } from '../gitlab/build-once.js';
import { isGitLabCi } from '../gitlab/ci.js';
import { type DotenvVariable, dotenvLimits, writeDotenv } from '../gitlab/dotenv.js';
import { assertExpanded } from '../gitlab/variables.js';
import { applyAnnotationChanges, emptyAnnotations } from '../oci/annotations.js';
import { type AttachResult, attachBuildDetails } from '../oci/attach.js';
import { type Reference, formatReference } from '../oci/reference.js';
import { type ReferrersMode, referrersTag } from '../oci/referrers.js';
import { inertText } from '../inert-text.js';
import type { Runtime } from '../runtime.js';
import { type RegistryFlags, forEachImage, jsonOutput, parseImageArguments, registryClient, withSchemes } from './common.js';
import { type ReportOutcome, reportUrlFrom, sendReport } from './report.js';

interface AttachFlags extends RegistryFlags {
  annotation?: string[];
  removeAnnotation?: string[];
  ci: boolean;
  dryRun?: boolean;
  readBack: boolean;
  verify: boolean;
  overwrite?: boolean;
  referrersApi: ReferrersMode;
  output: 'text' | 'json' | 'dotenv';
  report?: string;
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

function textResult(r: AttachResult, out: string[], sameBuild: boolean): void {
  const subject = `${r.registry}/${r.repository}@${r.subject.digest}`;
  const referrer = `${r.registry}/${r.repository}@${r.referrer}`;
  const via = r.path === 'api' ? "the registry's referrers API" : `the referrers tag ${r.repository}:${referrersTag(r.subject.digest)}`;
  if (r.dryRun) {
    out.push(r.changed ? `${r.image}: would attach build details as ${referrer}, listed through ${via}` : `${r.image}: build details already attached as ${referrer}; nothing to write`);
    for (const k of Object.keys(r.annotations).sort()) out.push(`    ${inertText(k)}=${JSON.stringify(r.annotations[k])}`);
    out.push(`  subject (unchanged): ${subject}`);
    return;
  }
  out.push(
    r.changed
      ? `attached build details to ${r.image}`
      : sameBuild
        ? `${r.image}: ${ALREADY_THIS_PIPELINE}; nothing written`
        : `${r.image} already has these build details attached; nothing written`,
  );
  out.push(`  subject (unchanged): ${subject}`, `  referrer:            ${referrer}`, `  listed through:      ${via}`);
}

/**
 * The dotenv report of a CI job, as annotate's: the digest stays, so TAGTRAIL_DIGEST_BEFORE and
 * TAGTRAIL_DIGEST are the same, and TAGTRAIL_REFERRER names the referrer. Most useful first.
 */
function dotenvVariables(results: readonly AttachResult[]): DotenvVariable[] {
  const vars: DotenvVariable[] = [];
  const add = (r: AttachResult, suffix: string) =>
    vars.push(
      { name: `TAGTRAIL_IMAGE${suffix}`, value: `${r.registry}/${r.repository}@${r.subject.digest}` },
      { name: `TAGTRAIL_REFERRER${suffix}`, value: r.referrer },
      { name: `TAGTRAIL_DIGEST${suffix}`, value: r.subject.digest },
      { name: `TAGTRAIL_DIGEST_BEFORE${suffix}`, value: r.subject.digest },
    );
  if (results[0]) add(results[0], '');
  if (results.length > 1) results.forEach((r, i) => add(r, `_${i + 1}`));
  return vars;
}

export async function run(rt: Runtime, args: unknown[], opts: Record<string, unknown>): Promise<number> {
  const flags = opts as unknown as AttachFlags;
  const images = (args[0] as string[] | undefined) ?? [];

  // Check every input before the first request, so bad input never leaves half the images done.
  images.forEach(assertExpanded);
  const parsed = parseImageArguments(images);
  const refs: Reference[] = parsed.refs;
  const limits = flags.output === 'dotenv' ? dotenvLimits(rt.env) : undefined;
  const changes = annotationChanges({ env: rt.env, now: rt.now(), annotations: flags.annotation, remove: flags.removeAnnotation, ci: flags.ci });
  if (Object.keys(changes.set).length === 0) {
    throw new UsageError(flags.ci && !isGitLabCi(rt.env) ? 'no build details to attach: this is not a GitLab CI job and no --annotation was given' : 'no build details to attach', {
      hint: 'run it in a GitLab CI job (CI_PIPELINE_ID is set there), or pass --annotation KEY=VALUE',
    });
  }
  const reportUrl = reportUrlFrom(rt, flags.report);
  const wanted = applyAnnotationChanges(emptyAnnotations(), changes);
  const client = await registryClient(rt, withSchemes(flags, parsed), refs.map((r) => r.registry));

  const out: string[] = [];
  const warn: string[] = [];
  const { results, exitCode } = await forEachImage(rt, refs, async (ref) => {
    let sameBuild = false;
    const r = await attachBuildDetails(client, ref, {
      changes,
      now: rt.now(),
      dryRun: flags.dryRun ?? false,
      mode: flags.referrersApi,
      verify: flags.readBack && flags.verify,
      // Build details are written once (gitlab/build-once.ts): a referrer of this pipeline stands
      // for a retry; one of another pipeline stops the run.
      ...(flags.ci && !flags.overwrite
        ? {
            existingReferrers: (found) => {
              let otherPipeline: unknown;
              for (const d of found) {
                try {
                  const verdict = buildDetailsVerdict(d.annotations, rt.env, `${formatReference(ref)} (referrer ${d.digest})`);
                  // A retry, or another job of this pipeline, with the same details: nothing to add.
                  // Other --annotation values make a new referrer of this pipeline.
                  if (verdict === 'already-this-pipeline' && sameBuildApartFromJob(d.annotations, wanted)) {
                    sameBuild = true;
                    return d;
                  }
                } catch (err) {
                  otherPipeline ??= err;
                }
              }
              if (otherPipeline !== undefined) throw otherPipeline;
              return undefined;
            },
          }
        : {}),
    });
    if (flags.output === 'text') textResult(r, out, sameBuild);
    else if (sameBuild) warn.push(`${r.image}: ${ALREADY_THIS_PIPELINE}; nothing written`);
    for (const w of r.warnings) warn.push(`warning: ${formatReference(ref)}: ${inertText(w)}`);
    return r;
  });
  // After the write: the images written go to serve with the job's ID token (report.ts).
  let report: ReportOutcome | undefined;
  if (reportUrl && !(flags.dryRun ?? false)) {
    const imageOf = (r: AttachResult): string => `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : `@${r.subject.digest}`}`;
    report = await sendReport(rt, reportUrl, results.map((r) => ({ image: imageOf(r), digest: r.subject.digest, referrer: r.referrer })));
  }
  const withReport = (r: AttachResult): Record<string, unknown> => ({ ...jsonResult(r), ...(report ? { report: { accepted: report.accepted, ...(report.message ? { message: report.message } : {}) } } : {}) });
  if (flags.output === 'json' && results.length > 0) out.push(jsonOutput(results, refs.length, withReport));
  if (limits && results.length > 0) {
    const dotenv = writeDotenv(dotenvVariables(results), limits);
    if (dotenv.text !== '') out.push(dotenv.text.trimEnd());
    warn.push(...dotenv.warnings);
  }
  if (out.length > 0) rt.stdout.write(`${out.join('\n')}\n`);
  if (warn.length > 0) rt.stderr.write(`${warn.join('\n')}\n`);
  return exitCode;
}
