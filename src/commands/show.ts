// tagtrail show IMAGE: the build details of a tag.
import type { Build } from '../gitlab/build.js';
import { type ImageDetails, inspectImage } from '../oci/inspect.js';
import type { Reference } from '../oci/reference.js';
import { inertText } from '../inert-text.js';
import type { Runtime } from '../runtime.js';
import { type RegistryFlags, parseImageArguments, registryClient, withSchemes } from './common.js';

interface ShowFlags extends RegistryFlags {
  output: 'text' | 'json';
}

function buildLines(b: Build): string[] {
  const rows: [string, string | undefined][] = [
    ['pipeline', b.pipeline && [`#${b.pipeline.id}`, b.pipeline.url].filter(Boolean).join('  ')],
    ['job', b.job && [b.job.name, b.job.id && `#${b.job.id}`, b.job.url].filter(Boolean).join('  ')],
    ['commit', b.commit && [b.commit.sha, b.commit.url].filter(Boolean).join('  ')],
    ['ref', b.ref && [`${b.ref.name} (${b.ref.kind})`, b.ref.url].filter(Boolean).join('  ')],
    ['merge request', b.mergeRequest && [`!${b.mergeRequest.iid}`, b.mergeRequest.url].filter(Boolean).join('  ')],
    ['project', b.project && [b.project.path, b.project.url].filter(Boolean).join('  ')],
    ['user', b.user && [b.user.login, b.user.id && `(id ${b.user.id})`].filter(Boolean).join(' ')],
  ];
  return rows.filter(([, v]) => v).map(([k, v]) => `  ${`${k}:`.padEnd(15)}${inertText(v ?? '')}`);
}

function sourceLine(d: ImageDetails): string {
  switch (d.source) {
    case 'labels':
      return 'build details (from config labels only; no manifest annotations, no referrer):';
    case 'referrer':
      return `build details (from referrer ${inertText(d.referrer ?? '')}; the manifest itself carries none):`;
    default:
      return 'build details (from the manifest annotations):';
  }
}

const BUILD_KEYS = 'com.gitlab.ci.*, org.opencontainers.image.revision or org.opencontainers.image.source';

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Why there are no build details, in terms of what is listed below it: never "none" next to a list. */
export function noDetailsLine(d: Pick<ImageDetails, 'annotations' | 'referrers'>): string {
  const annotations = Object.keys(d.annotations).length;
  const hold = (n: number) => (n === 1 ? 'holds' : 'hold');
  const parts = [
    annotations === 0 ? 'the manifest carries no annotations' : `the manifest's ${plural(annotations, 'annotation', 'annotations')} (listed below) ${hold(annotations)} no ${BUILD_KEYS}`,
    d.referrers.length === 0
      ? 'no build-details referrer is attached'
      : `the ${plural(d.referrers.length, 'build-details referrer', 'build-details referrers')} (listed below) ${hold(d.referrers.length)} none of them`,
    'and the config has no labels that map to them',
  ];
  return `no build details: ${parts.join(', ')}.`;
}

function text(d: ImageDetails): string {
  const lines = [inertText(d.image), `  digest:        ${inertText(d.digest)}`, `  media type:    ${inertText(d.mediaType)}`];
  if (d.build) {
    lines.push('', sourceLine(d), ...buildLines(d.build));
  } else {
    lines.push('', noDetailsLine(d), 'add them with `tagtrail attach` or `tagtrail annotate` after the push, or `tagtrail flags` at build time.');
  }
  const keys = Object.keys(d.annotations).sort();
  if (keys.length > 0) lines.push('', 'annotations (manifest):', ...keys.map((k) => `  ${inertText(k)}=${JSON.stringify(d.annotations[k])}`));
  for (const r of d.referrers) {
    const via = r.path === 'api' ? 'referrers API' : 'referrers tag';
    const used = d.source === 'referrer' && d.referrer === r.digest ? '' : d.source === 'annotations' ? ' (not used: the manifest annotations take precedence)' : ' (older)';
    lines.push('', `annotations (referrer ${inertText(r.digest)}, via the ${via})${used}:`, ...Object.keys(r.annotations).sort().map((k) => `  ${inertText(k)}=${JSON.stringify(r.annotations[k])}`));
  }
  if (d.source === 'labels' && d.labels) lines.push('', 'labels:', ...Object.keys(d.labels).sort().map((k) => `  ${inertText(k)}=${JSON.stringify(d.labels?.[k])}`));
  for (const m of d.manifests) lines.push('', `platform ${inertText(m.platform)}: ${inertText(m.digest)}`);
  return `${lines.join('\n')}\n`;
}

export async function run(rt: Runtime, args: unknown[], opts: Record<string, unknown>): Promise<number> {
  const flags = opts as unknown as ShowFlags;
  const image = parseImageArguments([String(args[0])]);
  const ref = image.refs[0] as Reference;
  const client = await registryClient(rt, withSchemes(flags, image), [ref.registry]);
  const details = await inspectImage(client, ref);
  for (const w of details.warnings) rt.stderr.write(`warning: ${inertText(w)}\n`);
  rt.stdout.write(flags.output === 'json' ? `${JSON.stringify(details, null, 2)}\n` : text(details));
  return 0;
}
