// tagtrail flags: the annotation set `annotate` would write, as arguments for a builder that
// writes annotations itself, or as json or a GitLab dotenv report. A thin layer over gitlab/flags.
import { UsageError } from '../errors.js';
import { annotationSet } from '../gitlab/annotation-set.js';
import { isGitLabCi } from '../gitlab/ci.js';
import {
  DEFAULT_BUILDX_LEVELS,
  type FlagFormat,
  type Framing,
  annotationsJson,
  builderArgs,
  dotenvReport,
  frame,
  isArgvFormat,
  parseBuildxLevels,
} from '../gitlab/flags.js';
import { inertOutput } from '../inert-text.js';
import type { Runtime } from '../runtime.js';

interface FlagsOptions {
  format: FlagFormat;
  levels?: string;
  annotation: string[];
  removeAnnotation: string[];
  ci: boolean;
  null?: boolean;
  lines?: boolean;
}

function framing(o: FlagsOptions): Framing {
  if (o.null && o.lines) throw new UsageError('--null and --lines cannot be used together', { hint: 'pick one way to separate the arguments' });
  if ((o.null || o.lines) && !isArgvFormat(o.format)) {
    throw new UsageError(`${o.null ? '--null' : '--lines'} applies to argument lists, not to --format ${o.format}`, {
      hint: 'use it with --format buildx, buildah, podman or labels',
    });
  }
  return o.null ? 'nul' : o.lines ? 'lines' : 'shell';
}

export async function run(rt: Runtime, _args: unknown[], opts: Record<string, unknown>): Promise<number> {
  const o = opts as unknown as FlagsOptions;
  const how = framing(o);
  if (o.levels !== undefined && o.format !== 'buildx') {
    throw new UsageError(`--levels applies to --format buildx only, not to --format ${o.format}`, { hint: 'drop --levels, or use --format buildx' });
  }
  const levels = parseBuildxLevels(o.levels ?? DEFAULT_BUILDX_LEVELS);
  const set = annotationSet({ env: rt.env, now: rt.now(), annotations: o.annotation, remove: o.removeAnnotation, ci: o.ci });

  if (Object.keys(set).length === 0) {
    rt.stderr.write(
      o.ci && !isGitLabCi(rt.env)
        ? 'warning: no annotations: this is not a GitLab CI job and no --annotation was given\n'
        : 'warning: no annotations to print\n',
    );
  }

  switch (o.format) {
    case 'json':
      // Standard output is raw for the argument lists; JSON is made inert like every other command's (valid JSON, same values).
      rt.stdout.write(inertOutput(annotationsJson(set)));
      return 0;
    case 'dotenv': {
      const report = dotenvReport(set);
      for (const w of report.warnings) rt.stderr.write(`${w}\n`);
      rt.stdout.write(report.text);
      return 0;
    }
    default:
      rt.stdout.write(frame(builderArgs(set, o.format, levels), set, how));
      return 0;
  }
}
