// Runs the real tools (skopeo, openssl, curl) with arguments as an array: no shell, no quoting.
import { execFile } from 'node:child_process';

export interface ExecResult {
  stdout: Buffer;
  stderr: string;
}

export class ExecError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stdout: Buffer,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode ?? 'signal'}): ${stderr.trim() || stdout.toString('utf8').trim()}`);
    this.name = 'ExecError';
  }
}

export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  cwd?: string;
}

/**
 * Runs file with args and resolves with its output; rejects with ExecError (exit code, stdout,
 * stderr) when it exits non-zero, so a test failure shows what the tool said.
 * The error message names the program and its subcommand only: arguments may hold credentials.
 */
export function run(file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        encoding: 'buffer',
        maxBuffer: 256 * 1024 * 1024,
        timeout: options.timeoutMs ?? 60_000,
        env: options.env ?? process.env,
        cwd: options.cwd,
      },
      (err, stdout, stderr) => {
        const errText = stderr.toString('utf8');
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null;
          reject(new ExecError(`${file} ${args[0] ?? ''}`.trim(), code, stdout, errText));
          return;
        }
        resolve({ stdout, stderr: errText });
      },
    );
  });
}
