// `tagtrail serve` as a real child process (node bin/tagtrail.js serve), for end-to-end tests:
// its JSON log lines, its address, and SIGTERM. Builds dist/ first when the sources are newer.
import { type ChildProcess, execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killChild, spawnGroup } from '../helpers/cleanup.js';
import { BIN } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Runs the bundler when dist/cli.js is missing or older than a file under src/. */
export function ensureBuilt(): void {
  let built = 0;
  try {
    built = statSync(join(ROOT, 'dist', 'cli.js')).mtimeMs;
  } catch {
    built = 0;
  }
  if (built < newest(join(ROOT, 'src'))) execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface ServeProcess {
  child: ChildProcess;
  /** http://127.0.0.1:PORT, from the "listening" log line. */
  url: string;
  /** Standard output, line by line (JSON log lines). */
  stdout: string[];
  stderr: string[];
  logs(): LogLine[];
  /** Waits until a log line matches. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM, then the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** nodeArgs go to node itself, before the script (a benchmark's --cpu-prof, which NODE_OPTIONS refuses). */
export async function startServe(args: readonly string[], env: Record<string, string>, timeoutMs = 20_000, nodeArgs: readonly string[] = []): Promise<ServeProcess> {
  const child = spawnGroup(process.execPath, [...nodeArgs, BIN, 'serve', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const lines = (stream: NodeJS.ReadableStream, into: string[]): void => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const p of parts) if (p.length > 0) into.push(p);
      for (const w of waiters) w();
    });
  };
  lines(child.stdout!, stdout);
  lines(child.stderr!, stderr);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const logs = (): LogLine[] =>
    stdout.flatMap((l) => {
      try {
        return [JSON.parse(l) as LogLine];
      } catch {
        return [];
      }
    });
  const waitForLog = (match: (l: LogLine) => boolean, ms = 10_000): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = logs().find(match);
        if (!found) return false;
        cleanup();
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching log line within ${ms} ms; stdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('\n')}`));
      }, ms);
      const wake = (): void => void check();
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(wake);
      };
      if (!check()) waiters.add(wake);
    });

  const ready = await Promise.race([waitForLog((l) => l.msg === 'listening', timeoutMs), exited.then((code) => ({ exited: code }))]).catch(async (err: unknown) => {
    await killChild(child);
    throw err;
  });
  if ('exited' in ready) throw new Error(`tagtrail serve exited with ${String(ready.exited)}:\n${stdout.join('\n')}\n${stderr.join('\n')}`);
  return {
    child,
    url: ready.url as string,
    stdout,
    stderr,
    logs,
    waitForLog,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      // Its process group too, and the record that it stopped.
      await killChild(child);
      return code;
    },
  };
}

/** Polls fn until it returns a value that is not undefined, or the deadline passes. */
export async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
