// The person a request is made for, once sign-in (gitlab-sign-in.ts) has found them: set on the
// hono context, read by the API and the pages to filter what they show.
import type { Context } from 'hono';
import type { ReadScope } from '../../catalog/read-scope.js';

interface Viewer {
  username: string;
  scope: ReadScope;
  /** The sign-out form's CSRF token, when the request came with a session cookie. */
  csrf?: string;
}

declare module 'hono' {
  interface ContextVariableMap {
    viewer: Viewer | undefined;
  }
}

/** Undefined: serve runs open (--auth none), everything is readable. */
export function viewerOf(c: Context): Viewer | undefined {
  return c.get('viewer');
}

export function readScopeOf(c: Context): ReadScope | undefined {
  return c.get('viewer')?.scope;
}

/** `{ scope }` for a store query, or nothing when everything is readable. */
export function scoped(c: Context): { scope?: ReadScope } {
  const scope = readScopeOf(c);
  return scope ? { scope } : {};
}
