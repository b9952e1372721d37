// `tagtrail sync` as a command, in-process: flags and their environment variables, the summary,
// the progress bar on a TTY, registry credentials as in annotate, and the crawl lock.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli.js';
import { openStore } from '../../src/catalog/open.js';
import { CRAWL_LOCK } from '../../src/catalog/sync.js';
import type { Runtime } from '../../src/runtime.js';
import { BIN, runCli } from '../helpers/cli.js';
import { trackChild } from '../helpers/cleanup.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { useRegistry, useTempDir, useTokenIssuer } from '../helpers/fixtures.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { ciAnnotations, hex, seedRegistry } from '../catalog/seed.js';
import { ensureBuilt } from '../server/serve-process.js';

const PASSWORD = 'registry-password-Zq9';

describe('tagtrail sync', () => {
  const registry = useRegistry();
  const dir = useTempDir('sync-cmd');

  beforeAll(async () => {
    await seedRegistry(registry().host, 'cmd');
  });

  it('crawls into the database named by --db and prints a summary', async () => {
    const db = `sqlite:${join(dir(), 'a.db')}`;
    const first = await runCli(['sync', '--registry', `http://${registry().host}`, '--repository', 'cmd', '--db', db]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`synced ${registry().host} (repositories under cmd)`);
    expect(first.stdout).toContain('repositories: 4   tags checked: 4');
    expect(first.stdout).toContain('manifests read: 6   config blobs read: 2   new in the catalog: 6');
    expect(first.stdout).toContain('tags: 4 added, 0 moved, 0 deleted, 0 unchanged');

    const second = await runCli(['sync', '-o', 'json'], { env: { TAGTRAIL_REGISTRY: registry().host, TAGTRAIL_DB: db } });
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ complete: true, repositories: 4, unchanged: 4, manifestsFetched: 0, configsFetched: 0, prefix: null });

    const store = await openStore(db);
    try {
      expect((await store.stats()).liveTags).toBe(4);
    } finally {
      await store.close();
    }
  });

  it('draws a progress bar on a TTY', async () => {
    let stderr = '';
    let stdout = '';
    const rt: Runtime = {
      env: {},
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s), isTTY: true },
      readStdin: async () => '',
      fetch: globalThis.fetch,
      now: () => new Date(),
      cwd: process.cwd(),
    };
    const code = await main(['sync', '--registry', registry().host, '--repository', 'cmd', '--db', `sqlite:${join(dir(), 'tty.db')}`], rt);
    expect(code).toBe(0);
    // eslint-disable-next-line no-control-regex
    expect(stderr).toMatch(/\r\u001b\[2K\[#* *\] \d\/4 repositories, \d+\/\d+ tags, \d+ manifests read/);
    expect(stdout).toContain('tags: 4 added');
  });

  it('refuses to crawl while another process holds the crawl lock', async () => {
    const db = `sqlite:${join(dir(), 'locked.db')}`;
    const store = await openStore(db);
    let release!: () => void;
    const held = store.withLock(CRAWL_LOCK, () => new Promise<void>((resolve) => (release = resolve)));
    try {
      const r = await runCli(['sync', '--registry', registry().host, '--db', db]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('is crawling into this catalog right now');
    } finally {
      release();
      await held;
      await store.close();
    }
  });

  it('stops on SIGINT after the requests in flight, and the next run resumes', async () => {
    ensureBuilt();
    // Slow HEADs, so the interrupt lands mid-crawl.
    const proxy = await startFaultProxy({ upstream: registry().url });
    proxy.addRule({ method: 'HEAD', path: /\/manifests\//, fault: { kind: 'latency', ms: 300 } });
    const db = `sqlite:${join(dir(), 'interrupted.db')}`;
    try {
      const child = spawn(process.execPath, [BIN, 'sync', '--registry', proxy.host, '--repository', 'cmd', '--db', db, '--concurrency', '1'], {
        env: { PATH: process.env.PATH ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      trackChild(child);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // Interrupt once the second repository's tag is being checked.
      while (proxy.count({ method: 'HEAD', kind: 'manifest' }) < 2) await new Promise((r) => setTimeout(r, 20));
      child.kill('SIGINT');
      expect(await exited).toBe(1);
      expect(stderr).toContain('stopping after the requests in flight');
      expect(stdout).toContain('interrupted syncing');
      expect(stdout).toContain('run the same command again to resume');

      const again = await runCli(['sync', '--registry', proxy.host, '--repository', 'cmd', '--db', db]);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/synced .* resumed after cmd\//);
      const store = await openStore(db);
      try {
        expect((await store.stats()).liveTags).toBe(4);
      } finally {
        await store.close();
      }
    } finally {
      await proxy.stop();
    }
  });

  it('checks its flags', async () => {
    const noRegistry = await runCli(['sync', '--db', `sqlite:${join(dir(), 'x.db')}`]);
    expect(noRegistry.code).toBe(2);
    expect(noRegistry.stderr).toContain('--registry');
    expect((await runCli(['sync', '--registry', 'ftp://x'])).stderr).toContain('not http or https');
    expect((await runCli(['sync', '--registry', 'https://x/y'])).stderr).toContain('without a path');
    expect((await runCli(['sync', '--registry', 'x', '--repository', 'Bad'])).stderr).toContain('--repository');
    expect((await runCli(['sync', '--registry', 'x', '--concurrency', '0'])).stderr).toContain('--concurrency');
    expect((await runCli(['sync', '--registry', 'x', '--db', 'mysql://x'])).stderr).toContain('unsupported catalog database URL');
  });
});

describe('tagtrail sync with registry credentials', () => {
  const issuer = useTokenIssuer({ users: { reader: { password: PASSWORD, catalog: true, access: () => ['pull', 'push'] } } });
  const registry = useRegistry(() => ({ auth: { tokenIssuer: issuer() } }));
  const dir = useTempDir('sync-auth');

  it('reads credentials as annotate does (environment, --password-stdin) and never prints them', async () => {
    // Push with skopeo's own credentials, then crawl with ours.
    const image = await makeImage(join(dir(), 'img'), { manifestAnnotations: ciAnnotations(hex(20), '1', 'main') });
    await pushImage(image, `${registry().host}/secure/app:v1`, { creds: `reader:${PASSWORD}` });

    const anonymous = await runCli(['sync', '--registry', registry().host, '--db', `sqlite:${join(dir(), 'anon.db')}`]);
    expect(anonymous.code).not.toBe(0);

    const env = { TAGTRAIL_REGISTRY_USER: 'reader', TAGTRAIL_REGISTRY_PASSWORD: PASSWORD };
    const viaEnv = await runCli(['sync', '--registry', registry().host, '--db', `sqlite:${join(dir(), 'env.db')}`, '--debug'], { env });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toContain('tags: 1 added');
    expect(`${viaEnv.stdout}${viaEnv.stderr}`).not.toContain(PASSWORD);

    const viaStdin = await runCli(['sync', '--registry', registry().host, '--db', `sqlite:${join(dir(), 'stdin.db')}`, '--username', 'reader', '--password-stdin'], { stdin: `${PASSWORD}\n` });
    expect(viaStdin.code).toBe(0);
    expect(viaStdin.stdout).toContain('tags: 1 added');
    expect(`${viaStdin.stdout}${viaStdin.stderr}`).not.toContain(PASSWORD);
  });
});
