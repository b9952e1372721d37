// The API's response contract in the tests: every JSON body a test gets is parsed with the
// response schema of the route that answered it (src/server/api/schemas.ts), so a field the
// schema does not describe, or one it describes wrongly, fails the test that saw it.
import { expect } from 'vitest';
import { API_MODULES } from '../../src/server/api/index.js';
import type { RouteSpec } from '../../src/server/api/route.js';
import { ErrorSchema } from '../../src/server/api/schemas.js';

interface Matcher {
  method: string;
  pattern: RegExp;
  spec: RouteSpec;
}

/** hono's path syntax as a regular expression: `:name{re}` takes re, `:name` one segment. */
function pathPattern(path: string): RegExp {
  let out = '';
  const token = /:([A-Za-z_][A-Za-z0-9_]*)(\{((?:[^{}]|\{[^{}]*\})*)\})?/g;
  let last = 0;
  for (const m of path.matchAll(token)) {
    out += path.slice(last, m.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out += m[3] !== undefined ? `(?:${m[3]})` : '[^/]+';
    last = m.index + m[0].length;
  }
  out += path.slice(last).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${out}$`);
}

const MATCHERS: Matcher[] = API_MODULES.flatMap((m) =>
  m.routes.map((spec) => ({ method: spec.method.toUpperCase(), pattern: pathPattern(`${m.base === '/' ? '' : m.base}${spec.path}`), spec })),
);

/** The spec of the route that serves `method path`, in the order hono tries them. */
export function routeFor(method: string, path: string): RouteSpec | undefined {
  const pathname = new URL(path, 'http://localhost').pathname;
  return MATCHERS.find((m) => m.method === method.toUpperCase() && m.pattern.test(pathname))?.spec;
}

/**
 * Parses a JSON response body with the schema its route declares for that status. A route that
 * declares no JSON schema for the status fails; a path no route serves must be the JSON 404.
 */
export function expectMatchesContract(method: string, path: string, status: number, body: unknown): void {
  const spec = routeFor(method, path);
  if (!spec) {
    expect(status, `${method} ${path}`).toBe(404);
    ErrorSchema.parse(body);
    return;
  }
  const schema = spec.responses[status]?.json;
  expect(schema, `${method} ${path} answered ${status}, which its route (${spec.operationId}) does not declare`).toBeDefined();
  const result = schema!.safeParse(body);
  expect(result.success ? [] : result.error.issues, `${method} ${path} (${status}) against ${spec.operationId}`).toEqual([]);
}
