// GET /api/v1/openapi.json: the OpenAPI 3.1 document, generated from the route specs (route.ts)
// and the zod schemas of their responses (schemas.ts) with zod's own JSON Schema output. Every
// JSON response refers to a named schema under components.schemas.
import { Hono } from 'hono';
import { z } from 'zod';
import { VERSION } from '../../version.js';
import { type ApiModule, type ApiResponse, type RouteSpec, SIGN_IN_REQUIRED, openApiPath, serve } from './route.js';
import { OpenApiSchema, apiSchemas } from './schemas.js';

const OPENAPI: RouteSpec = {
  method: 'get',
  path: '/openapi.json',
  operationId: 'openapi',
  summary: 'This document.',
  responses: { 200: { description: 'OpenAPI 3.1.', json: OpenApiSchema }, 401: SIGN_IN_REQUIRED },
};

export const OPENAPI_API: ApiModule = { base: '/api/v1', routes: [OPENAPI] };

const COMPONENTS = '#/components/schemas/';

/** The component name of a response schema; a schema without one is a programming error. */
export function schemaName(schema: z.ZodType): string {
  const id = apiSchemas.get(schema)?.id;
  if (!id) throw new Error('an API response schema has no name: add it to the registry in schemas.ts');
  return id;
}

function componentSchemas(): Record<string, Record<string, unknown>> {
  const { schemas } = z.toJSONSchema(apiSchemas, { uri: (id) => `${COMPONENTS}${id}` }) as { schemas: Record<string, Record<string, unknown>> };
  // OpenAPI 3.1 reads them in its own dialect, addressed by their place in the document.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _dialect, $id: _id, ...rest }]) => [id, rest]));
}

function responseObject(r: ApiResponse): Record<string, unknown> {
  const content = { ...(r.json ? { 'application/json': { schema: { $ref: `${COMPONENTS}${schemaName(r.json)}` } } } : {}), ...r.content };
  return { description: r.description, ...(Object.keys(content).length > 0 ? { content } : {}) };
}

function operation(spec: RouteSpec): Record<string, unknown> {
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    ...(spec.parameters ? { parameters: spec.parameters } : {}),
    ...(spec.security ? { security: spec.security } : {}),
    ...(spec.requestBody ? { requestBody: spec.requestBody } : {}),
    responses: Object.fromEntries(Object.entries(spec.responses).map(([status, r]) => [status, responseObject(r)])),
  };
}

export function openApiDocument(modules: readonly ApiModule[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const m of modules) {
    for (const spec of m.routes) {
      const path = openApiPath(m, spec);
      paths[path] = { ...paths[path], [spec.method]: operation(spec) };
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'tagtrail catalog API',
      version: VERSION,
      description:
        'Search container images by the GitLab CI build details in their OCI annotations (com.gitlab.ci.*, org.opencontainers.image.*), ' +
        'or, for images without them, their config labels. Errors are {"error": {"code", "message"}}; a bad parameter gets 400 and a message naming it. ' +
        'With serve --auth gitlab every call needs a GitLab access token (read_api) as Bearer, or the signed-in session cookie, else 401; ' +
        'each person then sees only the repositories of GitLab projects they can read, and anything else answers as if it were not in the catalog.',
    },
    // None with --auth none; a GitLab token or the session cookie with --auth gitlab.
    security: [{}, { gitlabToken: [] }, { session: [] }],
    paths,
    components: {
      securitySchemes: {
        webhookSecret: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'The secret itself, as GitLab and distribution send it.' },
        webhookBearer: { type: 'http', scheme: 'bearer' },
        gitlabToken: { type: 'http', scheme: 'bearer', description: 'A GitLab personal, project or group access token with read_api (serve --auth gitlab).' },
        session: { type: 'apiKey', in: 'cookie', name: 'tagtrail_session', description: 'The signed-in session (__Host-tagtrail_session over https).' },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'The --metrics-token, which /metrics needs when serve listens on an address others can reach.' },
        idToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "A GitLab CI ID token (id_tokens) whose aud is serve's public URL." },
        gitlabWebhookToken: { type: 'apiKey', in: 'header', name: 'X-Gitlab-Token', description: "The webhook's secret token, as GitLab sends it." },
      },
      schemas: componentSchemas(),
    },
  };
}

/** Serves the document of `modules` (this one included), built once. */
export function openApiApi(modules: () => readonly ApiModule[]): Hono {
  const app = new Hono();
  let document: Record<string, unknown> | undefined;
  serve(app, OPENAPI, (c) => c.json((document ??= openApiDocument(modules()))));
  return app;
}
