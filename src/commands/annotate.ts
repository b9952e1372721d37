// tagtrail annotate IMAGE...: a thin layer over oci/annotate.
import { UsageError } from '../errors.js';
import { annotationChanges } from '../gitlab/annotation-set.js';
import { labelsAsAnnotations } from '../details/keys.js';
import { ALREADY_THIS_PIPELINE, buildDetailsVerdict } from '../gitlab/build-once.js';
import { isGitLabCi } from '../gitlab/ci.js';
import { type DotenvVariable, dotenvLimits, writeDotenv } from '../gitlab/dotenv.js';
import { assertExpanded } from '../gitlab/variables.js';
import { type AnnotateResult, type ManifestOutcome, annotateImage } from '../oci/annotate.js';
import { type PlatformFilter, parsePlatform } from '../oci/manifest.js';
import { type Reference, formatReference } from '../oci/reference.js';
import { inertText } from '../inert-text.js';
import type { Runtime } from '../runtime.js';
import { type RegistryFlags, forEachImage, jsonOutput, parseImageArguments, registryClient, withSchemes } from './common.js';
import { type ReportOutcome, reportUrlFrom, sendReport } from './report.js';

interface AnnotateFlags extends RegistryFlags {
  annotation?: string[];
  removeAnnotation?: string[];
  ci: boolean;
  platform?: string[];
  toOci?: boolean;
  dryRun?: boolean;
  readBack: boolean;
  verify: boolean;
  overwrite?: boolean;
  fromLabels?: boolean;
  force?: boolean;
  output: 'text' | 'json' | 'dotenv';
  report?: string;
}

function jsonResult(r: AnnotateResult): Record<string, unknown> {
  return {
    image: r.image,
    changed: r.changed,
    dryRun: r.dryRun,
    before: r.before,
    after: r.after,
    manifests: r.manifests.map((m) => ({ platform: m.platform, before: m.before, after: m.after })),
    annotations: { ...r.annotations },
  };
}

function diffLines(m: ManifestOutcome): string[] {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(m.diff.added)) lines.push(`    + ${inertText(k)}=${JSON.stringify(v)}`);
  for (const [k, c] of Object.entries(m.diff.changed)) lines.push(`    ~ ${inertText(k)}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`);
  for (const k of Object.keys(m.diff.removed)) lines.push(`    - ${inertText(k)}`);
  if (m.converted) lines.push('    (media types converted to OCI)');
  return lines;
}

function textResult(r: AnnotateResult, out: string[], warn: string[], sameBuild: boolean): void {
  const pinned = `${r.registry}/${r.repository}@${r.after}`;
  if (r.dryRun) {
    out.push(`${r.image}: ${r.changed ? 'would change' : 'up to date, nothing to write'}`);
    for (const m of r.manifests) {
      const lines = diffLines(m);
      out.push(`  ${inertText(m.platform)} ${m.before}${lines.length === 0 ? ' (unchanged)' : ''}`, ...lines);
    }
    return;
  }
  if (!r.changed) {
    out.push(sameBuild ? `${r.image}: ${ALREADY_THIS_PIPELINE}; nothing written: ${pinned}` : `${r.image} is up to date: ${pinned}`);
    return;
  }
  out.push(`annotated ${r.image}`, pinned);
  const nested = r.manifests.filter((m) => m.platform.endsWith(' index')).length;
  if (nested > 0) out.push(`  including ${nested} nested ${nested === 1 ? 'index' : 'indexes'} and ${nested === 1 ? 'its' : 'their'} platform manifests, written innermost first`);
  if (r.tag !== undefined) {
    warn.push(`warning: the previous digest ${r.before} of ${r.repository}:${r.tag} is now untagged; a registry cleanup policy may remove it`);
  }
}

/**
 * The dotenv report's variables, most useful first: the first image unsuffixed, then each image
 * with its _N suffix (only when several are named), the pinned image before the digests.
 */
function dotenvVariables(results: readonly AnnotateResult[]): DotenvVariable[] {
  const vars: DotenvVariable[] = [];
  const add = (r: AnnotateResult, suffix: string) =>
    vars.push(
      { name: `TAGTRAIL_IMAGE${suffix}`, value: `${r.registry}/${r.repository}@${r.after}` },
      { name: `TAGTRAIL_DIGEST${suffix}`, value: r.after },
      { name: `TAGTRAIL_DIGEST_BEFORE${suffix}`, value: r.before },
    );
  results.forEach((r, i) => {
    if (i === 0) add(r, '');
  });
  if (results.length > 1) results.forEach((r, i) => add(r, `_${i + 1}`));
  return vars;
}

export async function run(rt: Runtime, args: unknown[], opts: Record<string, unknown>): Promise<number> {
  const flags = opts as unknown as AnnotateFlags;
  const images = (args[0] as string[] | undefined) ?? [];

  // Check every input before the first request, so bad input never leaves half the images done.
  images.forEach(assertExpanded);
  const parsed = parseImageArguments(images);
  const refs: Reference[] = parsed.refs;
  const limits = flags.output === 'dotenv' ? dotenvLimits(rt.env) : undefined;
  const platforms: PlatformFilter[] = (flags.platform ?? []).map(parsePlatform);
  const changes = annotationChanges({ env: rt.env, now: rt.now(), annotations: flags.annotation, remove: flags.removeAnnotation, ci: flags.ci });
  const nothingToDo = Object.keys(changes.set).length === 0 && Object.keys(changes.setIfAbsent ?? {}).length === 0 && changes.remove.length === 0 && !flags.toOci && !flags.fromLabels;
  if (nothingToDo) {
    throw new UsageError(flags.ci && !isGitLabCi(rt.env) ? 'no annotations to write: this is not a GitLab CI job and no --annotation was given' : 'no annotations to write', {
      hint: 'run it in a GitLab CI job (CI_PIPELINE_ID is set there), pass --annotation KEY=VALUE, or --from-labels to copy the image config labels',
    });
  }
  const reportUrl = reportUrlFrom(rt, flags.report);
  // Build details are written once (gitlab/build-once.ts); explicit --annotation values still apply.
  const explicitOnly = annotationChanges({ env: rt.env, now: rt.now(), annotations: flags.annotation, remove: flags.removeAnnotation, ci: false });
  const client = await registryClient(rt, withSchemes(flags, parsed), refs.map((r) => r.registry));

  const out: string[] = [];
  const warn: string[] = [];
  const { results, exitCode } = await forEachImage(rt, refs, async (ref) => {
    let sameBuild = false;
    const r = await annotateImage(client, ref, {
      changes,
      ...(flags.ci && !flags.overwrite
        ? {
            changesFor: (current) => {
              if (buildDetailsVerdict(current, rt.env, formatReference(ref)) === 'write') return changes;
              sameBuild = true;
              return explicitOnly;
            },
          }
        : {}),
      platforms,
      toOci: flags.toOci ?? false,
      dryRun: flags.dryRun ?? false,
      verify: flags.readBack && flags.verify,
      force: flags.force ?? false,
      ...(flags.fromLabels ? { fromLabels: labelsAsAnnotations } : {}),
    });
    for (const w of r.warnings) warn.push(`warning: ${inertText(w)}`);
    if (flags.output === 'text') textResult(r, out, warn, sameBuild);
    else if (sameBuild) warn.push(`${r.image}: ${ALREADY_THIS_PIPELINE}; build details left as they are`);
    return r;
  });
  // After the write: the images written go to serve with the job's ID token (report.ts).
  let report: ReportOutcome | undefined;
  if (reportUrl && !(flags.dryRun ?? false)) {
    const imageOf = (r: AnnotateResult): string => `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : `@${r.after}`}`;
    report = await sendReport(rt, reportUrl, results.map((r) => ({ image: imageOf(r), digest: r.after })));
  }
  const withReport = (r: AnnotateResult): Record<string, unknown> => ({ ...jsonResult(r), ...(report ? { report: { accepted: report.accepted, ...(report.message ? { message: report.message } : {}) } } : {}) });
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
