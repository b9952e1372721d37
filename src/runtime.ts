// What a command touches of the outside world, injected so tests can run commands in-process.
import type { HttpClient } from './net/http.js';

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
  /**
   * What every command sends its registry requests through, when the runtime has one (the
   * process's, on node:http); without it they go through `fetch`, as tests that inject fetch do.
   */
  readonly http?: HttpClient;
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

/** node:http with the same proxy and CA rules (net/node-http.ts), loaded on the first request. */
function lazyNodeHttp(env: Runtime['env']): HttpClient {
  let loaded: Promise<HttpClient> | undefined;
  return async (req) => {
    loaded ??= import('./net/node-http.js').then((m) => m.nodeHttpClient(env));
    return (await loaded)(req);
  };
}

export function processRuntime(): Runtime {
  return {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    readStdin: () => readAll(process.stdin),
    fetch: lazyNetworkFetch(process.env),
    http: lazyNodeHttp(process.env),
    now: () => new Date(),
    cwd: process.cwd(),
  };
}
