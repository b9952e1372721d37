// The `tagtrail` command line. Each command lives in src/commands/ and is loaded only when run,
// so `tagtrail --version` and `--help` stay as quick as node itself.
import { Command, CommanderError, Option } from 'commander';
import { EXIT_FAILURE, EXIT_USAGE, exitCodeFor, formatError, isTagtrailError } from './errors.js';
import { inertText, inertWriter } from './inert-text.js';
import { processRuntime, type Runtime } from './runtime.js';
import { VERSION } from './version.js';


function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Options every registry-facing command takes. */
function registryOptions(cmd: Command): Command {
  return cmd
    .option('--username <name>', 'registry user name (the password is read with --password-stdin)')
    .option('--password-stdin', 'read the registry password or token from standard input')
    .option('--insecure-registry <host>', 'reach this registry host over plain http (repeatable; env TAGTRAIL_INSECURE_REGISTRY, comma-separated)', collect, [])
    .option('--trusted-realm-host <host>', "a host whose token realm may receive the registry credentials besides the registry's own host, e.g. the GitLab server of a registry on another name (repeatable; env TAGTRAIL_TRUSTED_REALM_HOSTS, comma-separated)", collect, [])
    .option('--debug', 'log each registry request (credentials are always redacted; env TAGTRAIL_DEBUG=1)');
}

type Action = (rt: Runtime, args: unknown[], opts: Record<string, unknown>) => Promise<number>;

/**
 * Every command writes through inert outputs (inert-text.ts): text from a registry or an annotation
 * can never drive the terminal. `flags` keeps a raw standard output for its argument lists, which
 * must carry each value exactly (NUL-separated for xargs -0, shell-quoted for eval).
 */
function inertRuntime(rt: Runtime): Runtime {
  return { ...rt, stdout: inertWriter(rt.stdout), stderr: inertWriter(rt.stderr) };
}

export function buildProgram(raw: Runtime, setExit: (code: number) => void): Command {
  const rt = inertRuntime(raw);
  const program = new Command('tagtrail');
  program
    .description('Stamp GitLab CI build details into image manifests, and find any image by commit, pipeline or ref.')
    .version(VERSION, '-V, --version')
    .configureOutput({
      writeOut: (s) => rt.stdout.write(s),
      writeErr: (s) => rt.stderr.write(s),
    })
    .exitOverride()
    .showSuggestionAfterError(true);

  const run = (load: () => Promise<{ run: Action }>, output: { rawStdout?: boolean } = {}) =>
    async (...all: unknown[]) => {
      const cmd = all[all.length - 1] as Command;
      const opts = cmd.opts();
      const args = all.slice(0, all.length - 2);
      const mod = await load();
      setExit(await mod.run(output.rawStdout ? { ...rt, stdout: raw.stdout } : rt, args, opts));
    };

  registryOptions(
    program
      .command('annotate')
      .description('write GitLab CI build details into the manifests of images already in a registry')
      .argument('<image...>', 'image references, e.g. registry.gitlab.com/group/app:1.0 (https://127.0.0.1:5443/app:1 for https on loopback)')
      .option('-a, --annotation <key=value>', 'add or override an annotation (repeatable)', collect, [])
      .option('--remove-annotation <key>', 'remove an annotation (repeatable)', collect, [])
      .option('--no-ci', 'leave out the GitLab CI annotation set')
      .option('--platform <os/arch[/variant]>', 'annotate only these platforms of an index (repeatable)', collect, [])
      .option('--to-oci', 'convert Docker schema 2 manifests and manifest lists to OCI media types')
      .option('--from-labels', 'also copy the image config labels org.opencontainers.image.*, org.label-schema.* (mapped to OCI keys) and com.gitlab.ci.* into annotations the manifest lacks; reads each config blob')
      .option('--dry-run', 'print what would change, write nothing')
      .option('--no-verify', 'do not read the tag back after writing it: one request and a short wait fewer, but a concurrent writer that replaces the result goes unnoticed')
      .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'dotenv']).default('text')),
  ).action(run(() => import('./commands/annotate.js')));

  registryOptions(
    program
      .command('attach')
      .description('attach GitLab CI build details to images as an OCI 1.1 referrer; the image digest never changes')
      .argument('<image...>', 'image references, e.g. registry.gitlab.com/group/app:1.0 (https://127.0.0.1:5443/app:1 for https on loopback)')
      .option('-a, --annotation <key=value>', 'add or override an annotation (repeatable)', collect, [])
      .option('--remove-annotation <key>', 'leave out an annotation (repeatable)', collect, [])
      .option('--no-ci', 'leave out the GitLab CI annotation set')
      .option('--dry-run', 'print what would be attached, write nothing')
      .option('--no-verify', 'do not read the referrers tag back after writing it: one request and a short wait fewer, but a concurrent writer that drops our entry goes unnoticed')
      .addOption(
        new Option('--referrers-api <mode>', "auto: the registry's referrers API where it has one, else the sha256-<hex> referrers tag; always: the API or fail; never: the tag")
          .choices(['auto', 'always', 'never'])
          .default('auto'),
      )
      .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'dotenv']).default('text')),
  ).action(run(() => import('./commands/attach.js')));

  registryOptions(
    program
      .command('show')
      .description('show the build details of an image')
      .argument('<image>', 'image reference')
      .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text')),
  ).action(run(() => import('./commands/show.js')));

  // tagtrail flags: the same annotation set, for builders that write annotations themselves.
  program
    .command('flags')
    .description('print the annotation set as builder flags (buildx, buildah, podman), labels, json or dotenv')
    .addOption(new Option('-f, --format <format>', 'output form').choices(['buildx', 'buildah', 'podman', 'labels', 'json', 'dotenv']).default('buildx'))
    .option('--levels <levels>', 'buildx annotation levels, comma-separated: manifest, index, manifest-descriptor, index-descriptor (default: index,manifest)')
    .option('-a, --annotation <key=value>', 'add or override an annotation (repeatable)', collect, [])
    .option('--remove-annotation <key>', 'leave out an annotation (repeatable)', collect, [])
    .option('--no-ci', 'leave out the GitLab CI annotation set')
    .option('-0, --null', 'raw arguments, each ended by a NUL byte, for xargs -0 (default: shell-quoted words for eval)')
    .option('--lines', 'raw arguments, one per line (refused when a value holds a line break)')
    .action(run(() => import('./commands/flags.js'), { rawStdout: true }));

  // tagtrail sync: crawl a registry into the catalog database.
  registryOptions(
    program
      .command('sync')
      .description('crawl a registry (catalog, tags, manifests) into the catalog database')
      .option('--registry <url>', 'registry URL or host[:port] (env TAGTRAIL_REGISTRY)')
      .option('--repository <prefix>', 'only repositories at this path or under it (env TAGTRAIL_REPOSITORY)')
      .option('--db <url>', 'catalog database: sqlite:PATH or postgres://… (env TAGTRAIL_DB; default sqlite:./tagtrail.db)')
      .option('--concurrency <n>', 'registry requests in flight at most (env TAGTRAIL_CONCURRENCY; default 8)')
      .option('--restart', 'start over instead of resuming an interrupted sync')
      .option('--read-configs', 'read every new image config once for builder evidence, not only those of images without build annotations (env TAGTRAIL_READ_CONFIGS=1)')
      .addOption(new Option('-o, --output <format>', 'summary format').choices(['text', 'json']).default('text')),
  ).action(run(() => import('./commands/sync.js')));

  // tagtrail serve: the catalog API, the registry webhook and the periodic reconcile.
  registryOptions(
    program
      .command('serve')
      .description('serve the registry browser and the catalog API, take registry notifications, and reconcile with the registry periodically')
      .option('--listen <host:port>', 'address to listen on (env TAGTRAIL_LISTEN; default 127.0.0.1:8080)')
      .option('--registry <url>', 'registry URL or host[:port] (env TAGTRAIL_REGISTRY)')
      .option('--db <url>', 'catalog database: sqlite:PATH or postgres://… (env TAGTRAIL_DB; default sqlite:./tagtrail.db)')
      .option('--webhook-secret <secret>', 'shared secret registries send in the Authorization header (env TAGTRAIL_WEBHOOK_SECRET, preferred: flags show in ps); no secret, no webhook')
      .option('--reconcile-interval <seconds>', 'seconds between full reconciles; 0 turns them off (env TAGTRAIL_RECONCILE_INTERVAL; default 600)')
      .option('--concurrency <n>', 'registry requests in flight at most, per reconcile and for the webhook (env TAGTRAIL_CONCURRENCY; default 8)')
      .option('--read-configs', 'read every new image config once for builder evidence, not only those of images without build annotations (env TAGTRAIL_READ_CONFIGS=1)')
      .option('--gitlab-url <url>', 'a GitLab server whose URLs in annotations the browser shows as links; others stay text (repeatable; env TAGTRAIL_GITLAB_URL, comma-separated; default https://gitlab.com)', collect, []),
  ).action(run(() => import('./commands/serve.js')));

  return program;
}

export async function main(argv: readonly string[], raw: Runtime = processRuntime()): Promise<number> {
  let exitCode = 0;
  const rt = inertRuntime(raw);
  const program = buildProgram(raw, (c) => {
    exitCode = c;
  });
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (isTagtrailError(err)) {
      rt.stderr.write(`${formatError(err)}\n`);
      return exitCodeFor(err);
    }
    rt.stderr.write(`error: ${inertText(err instanceof Error ? err.message : String(err))}\n`);
    return EXIT_FAILURE;
  }
}
