// npm run demo, as a newcomer runs it (minus the build, which the suite does first): it must end
// with the registry browser answering with the sample images, and stop everything on Ctrl-C.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { killChild, makeTempDir, removeTempDir, trackChild } from './helpers/cleanup.js';
import { freePort } from './helpers/ports.js';
import { ensureBuilt } from './server/serve-process.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
let dir: string | undefined;

afterAll(async () => {
  if (dir) await removeTempDir(dir);
});

describe('npm run demo', () => {
  it('runs the browser on real data, and stops the server and the registry on Ctrl-C', async () => {
    ensureBuilt();
    dir = await makeTempDir('demo');
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      cwd: ROOT,
      env: { ...process.env, TAGTRAIL_DEMO_DIR: dir, TAGTRAIL_DEMO_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setInterval(() => {
          // The demo says each line in a write of its own: wait for its last one, not only the URL.
          const m = /The registry browser is running: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
          if (m && out.includes('Press Ctrl-C to stop')) {
            clearInterval(timer);
            resolve(m[1] as string);
          }
        }, 100);
        child.once('exit', (code) => {
          clearInterval(timer);
          reject(new Error(`the demo exited with ${code}:\n${out}\n${err}`));
        });
      });
      const registry = /Push more to (127\.0\.0\.1:\d+)/.exec(out)?.[1];
      expect(registry).toBeDefined();

      const home = await (await fetch(`${url}/`)).text();
      for (const repo of ['demo/shop/api', 'demo/shop/web', 'demo/tools/legacy-batch', 'demo/tools/report']) expect(home).toContain(`href="/r/${repo}"`);
      const api = await (await fetch(`${url}/r/demo/shop/api`)).text();
      expect(api).toContain('href="https://gitlab.example.com/shop/api/-/pipelines/48001"');
      expect(api).toContain('href="https://gitlab.example.com/shop/api/-/tags/v1.4.0"');
      expect(api).toContain('href="https://gitlab.example.com/shop/api/-/merge_requests/57"');
      const web = await (await fetch(`${url}/r/demo/shop/web/-/tags/2.0.0`)).text();
      expect(web).toContain('linux/arm64/v8');
      const legacy = await (await fetch(`${url}/r/demo/tools/legacy-batch`)).text();
      expect(legacy).toContain('No build details');
      const latest = await (await fetch(`${url}/r/demo/shop/api/-/tags/latest`)).text();
      expect((latest.match(/data-label="Then">replaced</g) ?? []).length).toBeGreaterThanOrEqual(2);
      const search = await (await fetch(`${url}/search?q=com.example.team%3Dpayments`)).text();
      expect((search.match(/<tr data-tag=/g) ?? []).length).toBe(6);

      child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
      expect(code).toBe(0);
      // Both are gone: nothing answers on either port.
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
      await expect(fetch(`http://${registry}/v2/`)).rejects.toThrow();
    } finally {
      await killChild(child);
    }
  }, 240_000);
});
