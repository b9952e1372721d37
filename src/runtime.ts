// What a command touches of the outside world, injected so tests can run commands in-process.
export interface Output {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  /** Writes a terminal control sequence of our own, unfiltered (see inert-text.ts). */
  control?(sequence: string): unknown;
}

export interface Runtime {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: Output;
  readonly stderr: Output;
  /** Reads all of standard input (for --password-stdin). */
  readonly readStdin: () => Promise<string>;
  readonly fetch: typeof fetch;
  readonly now: () => Date;
  readonly cwd: string;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

export function processRuntime(): Runtime {
  return {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    readStdin: () => readAll(process.stdin),
    fetch: globalThis.fetch,
    now: () => new Date(),
    cwd: process.cwd(),
  };
}
