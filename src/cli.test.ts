// Every command's help: ends with examples and the environment variables the command reads, and
// writes defaults one way.
import { describe, expect, it } from 'vitest';
import { main } from './cli.js';
import type { Runtime } from './runtime.js';

async function tagtrail(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const rt: Runtime = {
    env: {},
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    readStdin: async () => '',
    fetch: () => Promise.reject(new Error('help must not touch the network')),
    now: () => new Date(0),
    cwd: '/',
  };
  const code = await main(argv, rt);
  return { code, out, err };
}

const COMMANDS = ['annotate', 'attach', 'show', 'flags', 'sync', 'serve'];
const CREDENTIALS = ['TAGTRAIL_REGISTRY_USER', 'TAGTRAIL_REGISTRY_PASSWORD', 'CI_REGISTRY_USER', 'CI_REGISTRY_PASSWORD', 'DOCKER_AUTH_CONFIG', 'DOCKER_CONFIG'];

describe('command help', () => {
  it.each(COMMANDS)('%s --help ends with Examples and Environment, and shows no empty-list defaults', async (cmd) => {
    const r = await tagtrail([cmd, '--help']);
    expect(r.code).toBe(0);
    const help = r.out;
    const examples = help.indexOf('\nExamples:\n');
    const env = help.indexOf('\nEnvironment:\n');
    expect(examples, help).toBeGreaterThan(help.indexOf('\nOptions:\n'));
    expect(env, help).toBeGreaterThan(examples);
    expect(help.slice(examples).match(/^ {2}tagtrail /gm)?.length ?? 0, help).toBeGreaterThan(0);
    expect(help).not.toContain('(default: [])');
    // Defaults one way: "(…default: X)" from the option itself, never quoted, never "default X" in prose.
    expect(help).not.toMatch(/default: "/);
    expect(help).not.toMatch(/[(;] ?default [^:]/);
    expect(help).not.toMatch(/\benv TAGTRAIL_/);
  });

  it.each(['annotate', 'attach', 'show', 'sync', 'serve'])('%s --help names the credential variables it reads', async (cmd) => {
    const help = (await tagtrail([cmd, '--help'])).out;
    const env = help.slice(help.indexOf('\nEnvironment:\n'));
    for (const v of CREDENTIALS) expect(env, cmd).toContain(v);
  });

  it('names TAGTRAIL_LOG_LEVEL where it is read (serve), and TAGTRAIL_DOTENV_MAX_VARIABLES where dotenv is written', async () => {
    expect((await tagtrail(['serve', '--help'])).out).toContain('TAGTRAIL_LOG_LEVEL');
    for (const name of ['TAGTRAIL_AUTH', 'TAGTRAIL_PUBLIC_URL', 'TAGTRAIL_METRICS_TOKEN', 'TAGTRAIL_OAUTH_CLIENT_ID', 'TAGTRAIL_OAUTH_CLIENT_SECRET', 'TAGTRAIL_SESSION_SECRET', 'TAGTRAIL_ACCESS_CACHE_SECONDS']) {
      expect((await tagtrail(['serve', '--help'])).out).toContain(name);
    }
    for (const cmd of ['annotate', 'attach', 'flags']) expect((await tagtrail([cmd, '--help'])).out).toContain('TAGTRAIL_DOTENV_MAX_VARIABLES');
  });

  it('names the build report variables in annotate and attach, and the GitLab webhook and public URL variables in serve', async () => {
    const environment = async (cmd: string) => {
      const help = (await tagtrail([cmd, '--help'])).out;
      return help.slice(help.indexOf('\nEnvironment:\n'));
    };
    for (const cmd of ['annotate', 'attach']) {
      const help = (await tagtrail([cmd, '--help'])).out;
      expect(help, cmd).toContain('--report <url>');
      for (const v of ['TAGTRAIL_REPORT_URL', 'TAGTRAIL_ID_TOKEN']) expect(await environment(cmd), cmd).toContain(v);
    }
    const serve = (await tagtrail(['serve', '--help'])).out;
    expect(serve).toContain('--gitlab-webhook-secret <secret>');
    expect(serve).toContain('--public-url <url>');
    for (const v of ['TAGTRAIL_GITLAB_WEBHOOK_SECRET', 'TAGTRAIL_PUBLIC_URL']) expect(await environment('serve')).toContain(v);
  });

  it('shows the new names --output (flags), --no-read-back (annotate, attach) and a required --registry (sync)', async () => {
    const flags = (await tagtrail(['flags', '--help'])).out;
    expect(flags).toContain('-o, --output <format>');
    expect(flags).not.toContain('--format');
    for (const cmd of ['annotate', 'attach']) {
      const help = (await tagtrail([cmd, '--help'])).out;
      expect(help).toContain('--no-read-back');
      expect(help).not.toContain('--no-verify');
      expect(help).toContain('--overwrite');
    }
    const sync = (await tagtrail(['sync', '--help'])).out;
    expect(sync).toContain('Usage: tagtrail sync --registry <url> [options]');
    expect(sync).toMatch(/--registry <url> +registry URL or host\[:port\]; required/);
  });

  it('keeps the old names working: flags -f/--format, --no-verify', async () => {
    const old = await tagtrail(['flags', '--no-ci', '-a', 'com.example.a=1', '-f', 'json']);
    expect(old.code, old.err).toBe(0);
    expect(JSON.parse(old.out)).toEqual({ 'com.example.a': '1' });
    const long = await tagtrail(['flags', '--no-ci', '-a', 'com.example.a=1', '--format', 'dotenv']);
    expect(long.out).toBe('TAGTRAIL_ANNOTATION_COM_EXAMPLE_A=1\n');
    const both = await tagtrail(['flags', '--no-ci', '-a', 'com.example.a=1', '-o', 'json', '-f', 'dotenv']);
    expect(both.code).toBe(2);
    expect(both.err).toContain('disagree');
  });
});
