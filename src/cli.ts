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
    .option('--insecure-registry <host>', 'reach this registry host over plain http (repeatable)', collect)
    .option('--trusted-realm-host <host>', "a host whose token realm may receive the registry credentials besides the registry's own host, e.g. the GitLab server of a registry on another name (repeatable)", collect)
    .option('--debug', 'log each registry request (credentials are always redacted)');
}

/** The environment variables every registry-facing command reads for credentials. */
const CREDENTIAL_ENV: readonly (readonly [string, string])[] = [
  ['TAGTRAIL_REGISTRY_USER, TAGTRAIL_REGISTRY_PASSWORD', 'registry credentials (after --username with --password-stdin)'],
  ['CI_REGISTRY, CI_REGISTRY_USER, CI_REGISTRY_PASSWORD', "a GitLab job's own credentials, for images on $CI_REGISTRY"],
  ['DOCKER_AUTH_CONFIG', 'Docker config JSON with `auths`'],
  ['DOCKER_CONFIG', 'directory of config.json (default: ~/.docker)'],
  ['TAGTRAIL_REGISTRY_HOSTS', 'the registries TAGTRAIL_REGISTRY_USER and --username are for, comma-separated (default: the command\'s own)'],
  ['TAGTRAIL_TRUSTED_REALM_HOSTS', 'as --trusted-realm-host, comma-separated'],
  ['TAGTRAIL_INSECURE_REGISTRY', 'as --insecure-registry, comma-separated'],
  ['TAGTRAIL_CA_FILE', 'PEM certificates to trust besides the default ones (an internal CA)'],
  ['https_proxy, http_proxy, no_proxy', "proxies, by curl's rules (HTTPS_PROXY and NO_PROXY too; not HTTP_PROXY)"],
  ['TAGTRAIL_DEBUG', '1: as --debug'],
];

/** Read by serve, whose log lines are JSON on standard output. */
const LOG_ENV = ['TAGTRAIL_LOG_LEVEL', 'the log level: trace, debug, info, warn, error, fatal or silent (default: info)'] as const;

const CI_ENV = [
  'CI_PIPELINE_ID, CI_JOB_ID, CI_COMMIT_SHA, …',
  "GitLab's predefined variables: the build details (docs/gitlab-ci.md lists them all)",
] as const;

/** Read by annotate and attach for --report. */
const REPORT_ENV: readonly (readonly [string, string])[] = [
  ['TAGTRAIL_REPORT_URL', 'as --report'],
  ['TAGTRAIL_ID_TOKEN', 'the GitLab ID token --report sends (id_tokens in the job, aud: the report URL)'],
];

const DOTENV_ENV = ['TAGTRAIL_DOTENV_MAX_VARIABLES', "the instance's dotenv variable limit, for --output dotenv (default: 20)"] as const;

/** The end of a command's help: examples, then the environment variables it reads. */
function helpFooter(examples: readonly string[], env: readonly (readonly [string, string])[]): string {
  const width = Math.max(...env.map(([n]) => n.length));
  return [
    '',
    'Examples:',
    ...examples.map((e) => `  ${e}`),
    '',
    'Environment:',
    ...env.map(([n, d]) => `  ${n.padEnd(width)}  ${d}`),
  ].join('\n');
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
    // One way to write defaults and choices: "(one of a, b; default: a)". Empty lists are not
    // defaults worth showing, and a --no-x flag has none.
    .configureHelp({
      optionDescription: (o) => {
        const extra: string[] = [];
        if (o.argChoices) extra.push(`one of ${o.argChoices.join(', ')}`);
        const d = o.defaultValueDescription ?? (typeof o.defaultValue === 'string' || typeof o.defaultValue === 'number' ? String(o.defaultValue) : undefined);
        if (d !== undefined && !o.negate) extra.push(`default: ${d}`);
        return extra.length > 0 ? `${o.description} (${extra.join('; ')})` : o.description;
      },
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

  const output = (formats: string[]) => new Option('-o, --output <format>', 'output format').choices(formats).default(formats[0]);
  // The old name of --no-read-back: it read like "skip TLS verification". Still taken, not shown.
  const noVerify = () => new Option('--no-verify', 'old name of --no-read-back').hideHelp();
  const overwrite = 'replace build details another pipeline wrote, or write them again in the pipeline that wrote them (both are refused otherwise)';
  const report = 'after the write, report the images to tagtrail serve at this URL, authenticated by the GitLab ID token in TAGTRAIL_ID_TOKEN, so that serve verifies them';

  registryOptions(
    program
      .command('annotate')
      .description('write GitLab CI build details into the manifests of images already in a registry')
      .argument('<image...>', 'image references, e.g. registry.gitlab.com/group/app:1.0 (https://127.0.0.1:5443/app:1 for https on loopback)')
      .option('-a, --annotation <key=value>', 'add or override an annotation (repeatable)', collect)
      .option('--remove-annotation <key>', "leave this key out and delete it from the manifest's own annotations (repeatable)", collect)
      .option('--no-ci', 'leave out the GitLab CI annotation set')
      .option('--platform <os/arch[/variant]>', 'annotate only these platforms of an index (repeatable)', collect)
      .option('--to-oci', 'convert Docker schema 2 manifests and manifest lists to OCI media types')
      .option('--from-labels', 'also copy the image config labels org.opencontainers.image.*, org.label-schema.* (mapped to OCI keys) and com.gitlab.ci.* into annotations the manifest lacks; reads each config blob')
      .option('--overwrite', overwrite)
      .option('--dry-run', 'print what would change, write nothing')
      .option('--no-read-back', 'do not read the tag back after writing it: one request and a short wait fewer, but a concurrent writer that replaces the result goes unnoticed')
      .addOption(noVerify())
      .option('--force', 'annotate a manifest that carries a subject (a signature, an SBOM, a referrer) anyway: it gets a new digest and leaves its subject\'s referrers')
      .option('--report <url>', report)
      .addOption(output(['text', 'json', 'dotenv']))
      .addHelpText(
        'after',
        helpFooter(
          [
            'tagtrail annotate "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"',
            'tagtrail annotate --output dotenv "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA" > tagtrail.env',
            'tagtrail annotate --no-ci -a com.example.team=payments --dry-run registry.example.com/app:1.0',
          ],
          [CI_ENV, DOTENV_ENV, ...REPORT_ENV, ...CREDENTIAL_ENV],
        ),
      ),
  ).action(run(() => import('./commands/annotate.js')));

  registryOptions(
    program
      .command('attach')
      .description('attach GitLab CI build details to images as an OCI 1.1 referrer; the image digest never changes')
      .argument('<image...>', 'image references, e.g. registry.gitlab.com/group/app:1.0 (https://127.0.0.1:5443/app:1 for https on loopback)')
      .option('-a, --annotation <key=value>', 'add or override an annotation (repeatable)', collect)
      .option('--remove-annotation <key>', 'leave this key out of the referrer (repeatable)', collect)
      .option('--no-ci', 'leave out the GitLab CI annotation set')
      .option('--overwrite', `${overwrite}; a new referrer is added beside the old one`)
      .option('--dry-run', 'print what would be attached, write nothing')
      .option('--no-read-back', 'do not read the referrers tag back after writing it: one request and a short wait fewer, but a concurrent writer that drops our entry goes unnoticed')
      .addOption(noVerify())
      .addOption(
        new Option('--referrers-api <mode>', "auto: the registry's referrers API where it has one, else the sha256-<hex> referrers tag; always: the API or fail; never: the tag")
          .choices(['auto', 'always', 'never'])
          .default('auto'),
      )
      .option('--report <url>', report)
      .addOption(output(['text', 'json', 'dotenv']))
      .addHelpText(
        'after',
        helpFooter(
          ['tagtrail attach "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"', 'tagtrail attach --output dotenv "$CI_REGISTRY_IMAGE@$DIGEST" > tagtrail.env'],
          [CI_ENV, DOTENV_ENV, ...REPORT_ENV, ...CREDENTIAL_ENV],
        ),
      ),
  ).action(run(() => import('./commands/attach.js')));

  registryOptions(
    program
      .command('show')
      .description('show the build details of an image')
      .argument('<image>', 'image reference')
      .addOption(output(['text', 'json']))
      .addHelpText('after', helpFooter(['tagtrail show registry.gitlab.com/group/app:1.0', 'tagtrail show --output json registry.gitlab.com/group/app@sha256:…'], [...CREDENTIAL_ENV])),
  ).action(run(() => import('./commands/show.js')));

  // tagtrail flags: the same annotation set, for builders that write annotations themselves.
  program
    .command('flags')
    .description('print the annotation set as builder flags (buildx, buildah, podman), labels, json or dotenv')
    .addOption(output(['buildx', 'buildah', 'podman', 'labels', 'json', 'dotenv']).default(undefined, 'buildx'))
    // The old name of --output, still taken.
    .addOption(new Option('-f, --format <format>', 'old name of --output').choices(['buildx', 'buildah', 'podman', 'labels', 'json', 'dotenv']).hideHelp())
    .addOption(new Option('--levels <levels>', 'buildx annotation levels, comma-separated: manifest, index, manifest-descriptor, index-descriptor').default(undefined, 'index,manifest'))
    .option('-a, --annotation <key=value>', 'add or override an annotation (repeatable)', collect)
    .option('--remove-annotation <key>', 'leave this key out of the output (repeatable)', collect)
    .option('--no-ci', 'leave out the GitLab CI annotation set')
    .addOption(new Option('-0, --null', 'raw arguments, each ended by a NUL byte, for xargs -0').default(undefined, 'shell-quoted words for eval'))
    .option('--lines', 'raw arguments, one per line (refused when a value holds a line break)')
    .addHelpText(
      'after',
      helpFooter(
        [
          'eval "set -- $(tagtrail flags --output buildx)"; docker buildx build --push -t "$IMAGE" "$@" .',
          'tagtrail flags --output buildah --null | xargs -0 sh -c \'exec buildah build "$@" -t "$IMAGE" .\' sh',
          'tagtrail flags --output dotenv > flags.env',
        ],
        [CI_ENV, DOTENV_ENV],
      ),
    )
    .action(run(() => import('./commands/flags.js'), { rawStdout: true }));

  const GITLAB_GROUP_HELP = "crawl the container repositories of this GitLab group and its subgroups, listed through GitLab's API instead of /v2/_catalog (repeatable; token in TAGTRAIL_GITLAB_TOKEN)";
  const GITLAB_PROJECT_HELP = "crawl the container repositories of this GitLab project, listed through GitLab's API (repeatable; token in TAGTRAIL_GITLAB_TOKEN)";
  const GITLAB_ENV: readonly (readonly [string, string])[] = [
    ['TAGTRAIL_GITLAB_GROUPS', 'as --gitlab-group, comma-separated'],
    ['TAGTRAIL_GITLAB_PROJECTS', 'as --gitlab-project, comma-separated'],
    ['TAGTRAIL_GITLAB_TOKEN', 'the access token (read_api, read_registry) for --gitlab-group and --gitlab-project; also the registry credential'],
  ];

  // tagtrail sync: crawl a registry into the catalog database.
  registryOptions(
    program
      .command('sync')
      .description('crawl a registry (catalog, tags, manifests) into the catalog database')
      .usage('--registry <url> [options]')
      .option('--registry <url>', 'registry URL or host[:port]; required, here or as TAGTRAIL_REGISTRY')
      .option('--repository <prefix>', 'only repositories at this path or under it')
      .addOption(new Option('--db <url>', 'catalog database: sqlite:PATH or postgres://…').default(undefined, 'sqlite:./tagtrail.db'))
      .addOption(new Option('--concurrency <n>', 'registry requests in flight at most').default(undefined, '8'))
      .option('--restart', 'start over instead of resuming an interrupted sync')
      .option('--gitlab-group <path>', GITLAB_GROUP_HELP, collect)
      .option('--gitlab-project <path>', GITLAB_PROJECT_HELP, collect)
      .addOption(new Option('--gitlab-url <url>', 'the GitLab server of --gitlab-group and --gitlab-project').argParser(collect).default(undefined, 'https://gitlab.com'))
      .option('--read-configs', 'read every new image config once for builder evidence, not only those of images without build annotations')
      .addOption(output(['text', 'json']))
      .addHelpText(
        'after',
        helpFooter(
          ['tagtrail sync --registry registry.example.com --db sqlite:./tagtrail.db', 'TAGTRAIL_REGISTRY=127.0.0.1:5000 tagtrail sync --repository group/app'],
          [
            ['TAGTRAIL_REGISTRY', 'the registry, when --registry is not given'],
            ['TAGTRAIL_DB', 'the catalog database, when --db is not given'],
            ['TAGTRAIL_REPOSITORY', 'as --repository'],
            ['TAGTRAIL_CONCURRENCY', 'as --concurrency'],
            ['TAGTRAIL_READ_CONFIGS', '1: as --read-configs'],
            ['TAGTRAIL_GITLAB_URL', 'as --gitlab-url, comma-separated'],
            ...GITLAB_ENV,
            ...CREDENTIAL_ENV,
          ],
        ),
      ),
  ).action(run(() => import('./commands/sync.js')));

  // tagtrail serve: the catalog API, the registry webhook and the periodic reconcile.
  registryOptions(
    program
      .command('serve')
      .description('serve the registry browser and the catalog API, take registry notifications, and reconcile with the registry periodically')
      .addOption(new Option('--listen <host:port>', 'address to listen on').default(undefined, '127.0.0.1:8080'))
      .option('--registry <url>', 'registry URL or host[:port]')
      .addOption(new Option('--db <url>', 'catalog database: sqlite:PATH or postgres://…').default(undefined, 'sqlite:./tagtrail.db'))
      .option('--webhook-secret <secret>', 'shared secret registries send in the Authorization header (prefer TAGTRAIL_WEBHOOK_SECRET: flags show in ps); no secret, no webhook')
      .addOption(new Option('--reconcile-interval <seconds>', 'seconds between full reconciles; 0 turns them off').default(undefined, '600'))
      .addOption(new Option('--concurrency <n>', 'registry requests in flight at most, per reconcile and for the webhook').default(undefined, '8'))
      .option('--read-configs', 'read every new image config once for builder evidence, not only those of images without build annotations')
      .addOption(
        new Option('--gitlab-url <url>', 'a GitLab server whose URLs in annotations the browser shows as links; others stay text; the first one serves --gitlab-group and --gitlab-project (repeatable)').argParser(collect).default(undefined, 'https://gitlab.com'),
      )
      .option('--gitlab-group <path>', GITLAB_GROUP_HELP, collect)
      .option('--gitlab-project <path>', GITLAB_PROJECT_HELP, collect)
      .addOption(new Option('--auth <mode>', 'who may read the catalog: gitlab (sign in with the first --gitlab-url) or none (anyone who reaches serve); required on a non-loopback --listen').choices(['gitlab', 'none']).default(undefined, 'none on a loopback --listen'))
      .option('--public-url <url>', 'the origin people and CI jobs reach serve at, e.g. https://tagtrail.example.com: only its host is answered, sign-in returns there, and build reports (POST /api/v1/builds) are verified when their GitLab ID token has it as audience')
      .option('--metrics-token <token>', 'bearer token that opens /metrics when --listen is not loopback (prefer TAGTRAIL_METRICS_TOKEN)')
      .option('--gitlab-webhook-secret <secret>', "take GitLab's Pipeline and Job events at /api/v1/gitlab/events, sent with this secret token, and re-crawl the project's repositories when a pipeline or job ends (prefer TAGTRAIL_GITLAB_WEBHOOK_SECRET: flags show in ps)")
      .addHelpText(
        'after',
        helpFooter(
          ['tagtrail serve --registry registry.example.com --db postgres://tagtrail@db/tagtrail', 'TAGTRAIL_WEBHOOK_SECRET=… tagtrail serve --registry 127.0.0.1:5000'],
          [
            ['TAGTRAIL_LISTEN', 'as --listen'],
            ['TAGTRAIL_REGISTRY', 'as --registry'],
            ['TAGTRAIL_DB', 'as --db'],
            ['TAGTRAIL_WEBHOOK_SECRET', 'as --webhook-secret'],
            ['TAGTRAIL_RECONCILE_INTERVAL', 'as --reconcile-interval'],
            ['TAGTRAIL_CONCURRENCY', 'as --concurrency'],
            ['TAGTRAIL_READ_CONFIGS', '1: as --read-configs'],
            ['TAGTRAIL_GITLAB_URL', 'as --gitlab-url, comma-separated'],
            ['TAGTRAIL_AUTH', 'as --auth'],
            ['TAGTRAIL_PUBLIC_URL', 'as --public-url'],
            ['TAGTRAIL_METRICS_TOKEN', 'as --metrics-token'],
            ['TAGTRAIL_OAUTH_CLIENT_ID', "with --auth gitlab: the GitLab OAuth application's id"],
            ['TAGTRAIL_OAUTH_CLIENT_SECRET', "with --auth gitlab: the GitLab OAuth application's secret"],
            ['TAGTRAIL_SESSION_SECRET', 'with --auth gitlab: at least 32 characters; signs session cookies and encrypts GitLab tokens'],
            ['TAGTRAIL_ACCESS_CACHE_SECONDS', "with --auth gitlab: seconds a person's GitLab projects are remembered, 300 at most"],
            ...GITLAB_ENV,
            ['TAGTRAIL_GITLAB_WEBHOOK_SECRET', 'as --gitlab-webhook-secret'],
            ...CREDENTIAL_ENV,
            LOG_ENV,
          ],
        ),
      ),
  ).action(run(() => import('./commands/serve.js')));

  return program;
}

export async function main(argv: readonly string[], raw: Runtime = processRuntime()): Promise<number> {
  const rt = inertRuntime(raw);
  let exitCode = 0;
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
