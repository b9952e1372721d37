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

/**
 * undici's fetch with the proxy variables (curl's rules) and TAGTRAIL_CA_FILE honoured
 * (net/dispatcher.ts), loaded on the first request so --help and --version stay quick.
 */
function lazyNetworkFetch(env: Runtime['env']): typeof fetch {
  let loaded: Promise<typeof fetch> | undefined;
  return (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    loaded ??= import('./net/dispatcher.js').then((m) => m.networkFetch(env));
    return (await loaded)(input, init);
  }) as typeof fetch;
}

export function processRuntime(): Runtime {
  return {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    readStdin: () => readAll(process.stdin),
    fetch: lazyNetworkFetch(process.env),
    now: () => new Date(),
    cwd: process.cwd(),
  };
}
