// One API route: its path, parameters and response schemas, registered on a hono sub-app
// together with its handler. The OpenAPI document (openapi.ts) is built from these specs, so a
// route cannot be served without being described.
import type { Context, Hono } from 'hono';
import type { z } from 'zod';
import { API_MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE } from '../../catalog/paging.js';
import { ErrorSchema } from './schemas.js';

export interface ApiParameter {
  name: string;
  in: 'query' | 'path';
  description?: string;
  required?: boolean;
  schema: Record<string, unknown>;
  style?: 'form';
  explode?: boolean;
}

export interface ApiResponse {
  description: string;
  /** The JSON body's schema; every named schema is in schemas.ts. */
  json?: z.ZodType;
  /** Other content types, as OpenAPI media type objects (CSV, raw manifests, metrics text). */
  content?: Record<string, Record<string, unknown>>;
}

export interface RouteSpec {
  method: 'get' | 'post';
  /** The path as hono matches it, relative to the sub-app's base: `:name` or `:name{regex}` for a parameter. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  parameters?: readonly ApiParameter[];
  requestBody?: Record<string, unknown>;
  security?: readonly Record<string, string[]>[];
  responses: Readonly<Record<number, ApiResponse>>;
}

/** A sub-app mounted at `base` with `app.route`, and the specs of the routes it serves. */
export interface ApiModule {
  base: string;
  routes: readonly RouteSpec[];
}

/** Registers the handler of `spec` on `app`. */
export function serve(app: Hono, spec: RouteSpec, handler: (c: Context) => Response | Promise<Response>): void {
  app.on(spec.method.toUpperCase(), spec.path, handler);
}

/** The full path in OpenAPI form: /api/v1/repositories/{repository}/tags. */
export function openApiPath(module: ApiModule, spec: RouteSpec): string {
  return honoToOpenApiPath(`${module.base === '/' ? '' : module.base}${spec.path}`);
}

const HONO_PARAMETER = /:([A-Za-z_][A-Za-z0-9_]*)(\{(?:[^{}]|\{[^{}]*\})*\})?/g;

/** `:name{regex}` and `:name` → `{name}`. */
export function honoToOpenApiPath(path: string): string {
  return path.replace(HONO_PARAMETER, '{$1}');
}

/** `:name{regex}` → `:name`: the route pattern as a metrics label, without its regexes. */
export function routePatternLabel(path: string): string {
  return path.replace(HONO_PARAMETER, ':$1');
}

export function errorResponse(description: string): ApiResponse {
  return { description, json: ErrorSchema };
}

/** What every catalog read answers under serve --auth gitlab to a request nobody signed (server/auth/). */
export const SIGN_IN_REQUIRED: ApiResponse = errorResponse(
  'serve --auth gitlab only: no signed-in session and no GitLab access token (read_api) as Bearer, or GitLab does not accept the token.',
);

export const LIMIT_PARAMETER: ApiParameter = {
  name: 'limit',
  in: 'query',
  description: `Items per page, 1 to ${API_MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE}).`,
  schema: { type: 'integer', minimum: 1, maximum: API_MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE },
};

export const CURSOR_PARAMETER: ApiParameter = {
  name: 'cursor',
  in: 'query',
  description: 'The nextCursor of the previous page, with the same other parameters.',
  schema: { type: 'string' },
};

export const DIGEST_PATH_PARAMETER: ApiParameter = {
  name: 'digest',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$' },
};
