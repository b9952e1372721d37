// A small route table for the GitLab stand-in, so each concern (REST, the registry's token realm,
// and later OIDC discovery, JWKS, ID tokens, webhooks) adds its own routes.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** An object or array is sent as JSON; a string as it is. */
  body?: unknown;
}

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** The request URL, on the origin the client reached. */
  url: URL;
  /** The pattern's captures, as sent (still percent-encoded). */
  match: RegExpExecArray;
}

/** A Reply, or 'handled' when the handler wrote the response itself. */
export type Handler = (ctx: RouteContext) => Reply | 'handled' | Promise<Reply | 'handled'>;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  /** Matched against the raw path (no query), so an encoded %2F stays inside one capture. */
  add(method: string, pattern: RegExp, handler: Handler): void {
    this.routes.push({ method: method.toUpperCase(), pattern, handler });
  }

  get(pattern: RegExp, handler: Handler): void {
    this.add('GET', pattern, handler);
  }

  post(pattern: RegExp, handler: Handler): void {
    this.add('POST', pattern, handler);
  }

  find(method: string, rawPath: string): { handler: Handler; match: RegExpExecArray } | undefined {
    for (const r of this.routes) {
      if (r.method !== method && !(method === 'HEAD' && r.method === 'GET')) continue;
      const match = r.pattern.exec(rawPath);
      if (match) return { handler: r.handler, match };
    }
    return undefined;
  }
}

export function send(res: ServerResponse, reply: Reply, head = false): void {
  const isText = typeof reply.body === 'string';
  const body = reply.body === undefined ? '' : isText ? (reply.body as string) : JSON.stringify(reply.body);
  const headers: Record<string, string> = { 'content-type': isText ? 'text/plain' : 'application/json', ...reply.headers };
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(reply.status, headers);
  res.end(head ? undefined : body);
}
