// The one request the registry transport (src/oci/transport.ts) needs from an HTTP client: no
// redirects followed, the body as raw bytes. Two clients give it: any fetch (httpFromFetch: what
// tests inject, and what serve and show use), and node's own http/https (node-http.ts) for the
// short commands of a CI job, which start about 100 ms sooner than with undici's fetch, and for
// sync, whose HEADs keep their connection (undici closes it after every HEAD).

export interface HttpRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | undefined;
  /** Aborts the request and the reading of its body; rejects with the signal's reason. */
  readonly signal: AbortSignal;
}

export interface HttpHeaders {
  /** The header's value (repeated headers joined with ", "), or null. */
  get(name: string): string | null;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: HttpHeaders;
  /** The raw bytes as they came (no content decoding), read once; null when there are none (HEAD). */
  readonly body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | null;
  /** Drops the body unread (a redirect), freeing the connection. */
  discard(): Promise<void>;
}

/** Sends one request; redirects come back as they are. Rejects only when no answer came. */
export type HttpClient = (req: HttpRequest) => Promise<HttpResponse>;

/** A fetch as an HttpClient. */
export function httpFromFetch(fetchFn: typeof fetch): HttpClient {
  return async (req) => {
    const res = await fetchFn(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body === undefined ? undefined : Buffer.from(req.body),
      redirect: 'manual',
      signal: req.signal,
    });
    return {
      status: res.status,
      headers: res.headers,
      body: res.body,
      discard: async () => {
        await res.body?.cancel().catch(() => undefined);
      },
    };
  };
}
