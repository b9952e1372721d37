// The OpenAPI document is generated from the route specs and their zod schemas: it is a valid
// OpenAPI 3.1 document, it lists exactly the routes hono serves, and every response schema in it
// is the JSON Schema of the zod schema the route declares.
import { Validator } from '@seriousme/openapi-schema-validator';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openStore } from '../../src/catalog/open.js';
import { createApp } from '../../src/server/app.js';
import { API_MODULES } from '../../src/server/api/index.js';
import { openApiDocument, schemaName } from '../../src/server/api/openapi.js';
import { honoToOpenApiPath, openApiPath } from '../../src/server/api/route.js';
import { apiSchemas } from '../../src/server/api/schemas.js';
import { makeTempDir, removeTempDir } from '../helpers/cleanup.js';
import { expectMatchesContract } from './api-contract.js';

type Operation = { responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> };
type Document = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };

async function servedDocument(mount?: (app: Hono) => void): Promise<{ app: Hono; doc: Document }> {
  const dir = await makeTempDir('openapi');
  const store = await openStore(`sqlite:${dir}/catalog.db`);
  try {
    const app = createApp({ store, ...(mount ? { ui: mount } : {}) });
    const res = await app.request('/api/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Document;
    expectMatchesContract('GET', '/api/v1/openapi.json', 200, doc);
    return { app, doc };
  } finally {
    await store.close();
    await removeTempDir(dir);
  }
}

/** hono's route table: handlers only (middleware is registered for ALL methods). */
function served(app: Hono): string[] {
  const routes = app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method.toLowerCase()} ${honoToOpenApiPath(r.path)}`);
  expect(new Set(routes).size).toBe(routes.length);
  return routes;
}

/** Routes under /api/ that the document does not list. */
function undocumented(app: Hono, doc: Document): string[] {
  return served(app).filter((r) => {
    const [method, path] = r.split(' ') as [string, string];
    return path.startsWith('/api/') && doc.paths[path]?.[method] === undefined;
  });
}

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const { doc } = await servedDocument();
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('lists exactly the routes hono serves, each with the response schemas its spec declares', async () => {
    const { app, doc } = await servedDocument();
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`));
    expect(documented.length).toBeGreaterThanOrEqual(13);
    expect(undocumented(app, doc)).toEqual([]);
    expect(documented.filter((r) => !served(app).includes(r))).toEqual([]);
    // A route mounted without a spec is found.
    const extra = new Hono();
    extra.get('/extra/:id', (c) => c.json({}));
    const withExtra = await servedDocument((a) => a.route('/api/v1', extra));
    expect(undocumented(withExtra.app, withExtra.doc)).toEqual(['get /api/v1/extra/{id}']);

    // zod's JSON Schema of every named schema, addressed as the document addresses them.
    const generated = (z.toJSONSchema(apiSchemas, { uri: (id) => `#/components/schemas/${id}` }) as { schemas: Record<string, Record<string, unknown>> }).schemas;
    for (const m of API_MODULES) {
      for (const spec of m.routes) {
        const op = doc.paths[openApiPath(m, spec)]?.[spec.method];
        expect(op, spec.operationId).toBeDefined();
        const success = Object.keys(spec.responses).filter((s) => s.startsWith('2'));
        expect(success.length, `${spec.operationId} declares a success response`).toBeGreaterThan(0);
        for (const [status, response] of Object.entries(spec.responses)) {
          const content = op!.responses[status]?.content ?? {};
          expect(Object.keys(content).length, `${spec.operationId} ${status} has content`).toBeGreaterThan(0);
          if (!response.json) continue;
          const name = schemaName(response.json);
          expect(content['application/json']?.schema).toEqual({ $ref: `#/components/schemas/${name}` });
          const { $schema: _dialect, $id: _id, ...expected } = generated[name] ?? {};
          expect(doc.components.schemas[name], name).toEqual(expected);
        }
      }
    }
  });

  it('refuses a route whose response schema has no name', () => {
    const route = { method: 'get' as const, path: '/x', operationId: 'x', summary: 'x', responses: { 200: { description: 'x', json: z.object({ a: z.string() }) } } };
    expect(() => openApiDocument([{ base: '/api/v1', routes: [route] }])).toThrow(/no name/);
  });
});
