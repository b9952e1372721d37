// tagtrail annotate IMAGE...: a thin layer over oci/annotate.
import { UsageError } from '../errors.js';
import { annotationChanges } from '../gitlab/annotation-set.js';
import { labelsAsAnnotations } from '../gitlab/build.js';
import { isGitLabCi } from '../gitlab/ci.js';
import { type AnnotateResult, type ManifestOutcome, annotateImage } from '../oci/annotate.js';
import { type PlatformFilter, parsePlatform } from '../oci/manifest.js';
import type { Reference } from '../oci/reference.js';
import { inertText } from '../inert-text.js';
import type { Runtime } from '../runtime.js';
import { type RegistryFlags, forEachImage, jsonOutput, parseImageArguments, registryClient, withSchemes } from './common.js';

interface AnnotateFlags extends RegistryFlags {
  annotation: string[];
  removeAnnotation: string[];
  ci: boolean;
  platform: string[];
  toOci?: boolean;
  dryRun?: boolean;
  verify: boolean;
  fromLabels?: boolean;
  output: 'text' | 'json' | 'dotenv';
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

function textResult(r: AnnotateResult, out: string[], warn: string[]): void {
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
    out.push(`${r.image} is up to date: ${pinned}`);
    return;
  }
  out.push(`annotated ${r.image}`, pinned);
  if (r.tag !== undefined) {
    warn.push(`warning: the previous digest ${r.before} of ${r.repository}:${r.tag} is now untagged; a registry cleanup policy may remove it`);
  }
}

function dotenvResult(results: readonly AnnotateResult[]): string[] {
  const lines: string[] = [];
  results.forEach((r, i) => {
    const ref = `${r.registry}/${r.repository}@${r.after}`;
    if (i === 0) lines.push(`TAGTRAIL_DIGEST_BEFORE=${r.before}`, `TAGTRAIL_DIGEST=${r.after}`, `TAGTRAIL_IMAGE=${ref}`);
    if (results.length > 1) lines.push(`TAGTRAIL_DIGEST_BEFORE_${i + 1}=${r.before}`, `TAGTRAIL_DIGEST_${i + 1}=${r.after}`, `TAGTRAIL_IMAGE_${i + 1}=${ref}`);
  });
  return lines;
}

export async function run(rt: Runtime, args: unknown[], opts: Record<string, unknown>): Promise<number> {
  const flags = opts as unknown as AnnotateFlags;
  const images = (args[0] as string[] | undefined) ?? [];

  // Check every input before the first request, so bad input never leaves half the images done.
  const parsed = parseImageArguments(images);
  const refs: Reference[] = parsed.refs;
  const platforms: PlatformFilter[] = flags.platform.map(parsePlatform);
  const changes = annotationChanges({ env: rt.env, now: rt.now(), annotations: flags.annotation, remove: flags.removeAnnotation, ci: flags.ci });
  const nothingToDo = Object.keys(changes.set).length === 0 && Object.keys(changes.setIfAbsent ?? {}).length === 0 && changes.remove.length === 0 && !flags.toOci && !flags.fromLabels;
  if (nothingToDo) {
    throw new UsageError(flags.ci && !isGitLabCi(rt.env) ? 'no annotations to write: this is not a GitLab CI job and no --annotation was given' : 'no annotations to write', {
      hint: 'run it in a GitLab CI job (CI_PIPELINE_ID is set there), pass --annotation KEY=VALUE, or --from-labels to copy the image config labels',
    });
  }
  const client = await registryClient(rt, withSchemes(flags, parsed), refs.map((r) => r.registry));

  const out: string[] = [];
  const warn: string[] = [];
  const { results, exitCode } = await forEachImage(rt, refs, async (ref) => {
    const r = await annotateImage(client, ref, {
      changes,
      platforms,
      toOci: flags.toOci ?? false,
      dryRun: flags.dryRun ?? false,
      verify: flags.verify,
      ...(flags.fromLabels ? { fromLabels: labelsAsAnnotations } : {}),
    });
    if (flags.output === 'text') textResult(r, out, warn);
    return r;
  });
  if (flags.output === 'json' && results.length > 0) out.push(jsonOutput(results, refs.length, jsonResult));
  if (flags.output === 'dotenv' && results.length > 0) out.push(...dotenvResult(results));
  if (out.length > 0) rt.stdout.write(`${out.join('\n')}\n`);
  if (warn.length > 0) rt.stderr.write(`${warn.join('\n')}\n`);
  return exitCode;
}
