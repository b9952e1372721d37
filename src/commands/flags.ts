// tagtrail flags: the annotation set `annotate` would write, as arguments for a builder that
// writes annotations itself, or as json or a GitLab dotenv report. A thin layer over gitlab/flags.
import { UsageError } from '../errors.js';
import { annotationSet } from '../gitlab/annotation-set.js';
import { isGitLabCi } from '../gitlab/ci.js';
import { dotenvLimits } from '../gitlab/dotenv.js';
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
  output?: FlagFormat;
  /** The old name of --output, still taken. */
  format?: FlagFormat;
  levels?: string;
  annotation?: string[];
  removeAnnotation?: string[];
  ci: boolean;
  null?: boolean;
  lines?: boolean;
}

/** --output, or its old name --format; the two must agree when both are given. */
function outputFormat(o: FlagsOptions): FlagFormat {
  if (o.output !== undefined && o.format !== undefined && o.output !== o.format) {
    throw new UsageError(`--output ${o.output} and --format ${o.format} disagree`, { hint: '--format is the old name of --output; give one of them' });
  }
  return o.output ?? o.format ?? 'buildx';
}

function framing(o: FlagsOptions, format: FlagFormat): Framing {
  if (o.null && o.lines) throw new UsageError('--null and --lines cannot be used together', { hint: 'pick one way to separate the arguments' });
  if ((o.null || o.lines) && !isArgvFormat(format)) {
    throw new UsageError(`${o.null ? '--null' : '--lines'} applies to argument lists, not to --output ${format}`, {
      hint: 'use it with --output buildx, buildah, podman or labels',
    });
  }
  return o.null ? 'nul' : o.lines ? 'lines' : 'shell';
}

export async function run(rt: Runtime, _args: unknown[], opts: Record<string, unknown>): Promise<number> {
  const o = opts as unknown as FlagsOptions;
  const format = outputFormat(o);
  const how = framing(o, format);
  if (o.levels !== undefined && format !== 'buildx') {
    throw new UsageError(`--levels applies to --output buildx only, not to --output ${format}`, { hint: 'drop --levels, or use --output buildx' });
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

  switch (format) {
    case 'json':
      // Standard output is raw for the argument lists; JSON is made inert like every other command's (valid JSON, same values).
      rt.stdout.write(inertOutput(annotationsJson(set)));
      return 0;
    case 'dotenv': {
      const report = dotenvReport(set, dotenvLimits(rt.env));
      for (const w of report.warnings) rt.stderr.write(`${w}\n`);
      rt.stdout.write(report.text);
      return 0;
    }
    default:
      rt.stdout.write(frame(builderArgs(set, format, levels), set, how));
      return 0;
  }
}
