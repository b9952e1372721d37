// Runs tagtrail in-process with a captured runtime (as hono tests run an app), or as the real
// bundled binary when a test needs a process: stdin, exit codes, signals.
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli.js';
import type { Runtime } from '../../src/runtime.js';
import { killChild, spawnGroup } from './cleanup.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
  now?: () => Date;
  fetch?: typeof fetch;
}

export async function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const rt: Runtime = {
    env: options.env ?? {},
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    readStdin: async () => options.stdin ?? '',
    fetch: options.fetch ?? globalThis.fetch,
    now: options.now ?? (() => new Date()),
    cwd: process.cwd(),
  };
  const code = await main(args, rt);
  return { code, stdout, stderr };
}

export const BIN = fileURLToPath(new URL('../../bin/tagtrail.js', import.meta.url));

/** The built CLI as a child process (run `npm run build` first; `npm test` does). */
export function runBin(args: readonly string[], options: { env?: Record<string, string | undefined>; stdin?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnGroup(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, ...options.env } as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => void killChild(child, 0), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    // A child that ends before reading its input (one refusing its arguments at once) closes the
    // pipe: the write then fails with EPIPE, which is no error of the run. Its exit says the rest.
    child.stdin?.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    child.stdin?.end(options.stdin ?? '');
  });
}

/** GitLab-like predefined variables for a pipeline, as a runner would set them. */
export function gitlabEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    GITLAB_CI: 'true',
    CI_SERVER_URL: 'https://gitlab.example.com',
    CI_PROJECT_ID: '42',
    CI_PROJECT_PATH: 'group/app',
    CI_PROJECT_NAME: 'app',
    CI_PROJECT_URL: 'https://gitlab.example.com/group/app',
    CI_PIPELINE_ID: '9001',
    CI_PIPELINE_IID: '17',
    CI_PIPELINE_URL: 'https://gitlab.example.com/group/app/-/pipelines/9001',
    CI_PIPELINE_SOURCE: 'push',
    CI_JOB_ID: '77001',
    CI_JOB_NAME: 'build',
    CI_JOB_URL: 'https://gitlab.example.com/group/app/-/jobs/77001',
    CI_COMMIT_SHA: '4f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39',
    CI_COMMIT_SHORT_SHA: '4f2c1a9e',
    CI_COMMIT_REF_NAME: 'main',
    CI_COMMIT_BRANCH: 'main',
    CI_COMMIT_TIMESTAMP: '2026-11-26T09:00:00+00:00',
    GITLAB_USER_ID: '5',
    GITLAB_USER_LOGIN: 'dev',
    ...overrides,
  };
}
