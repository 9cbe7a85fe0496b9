import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { useApi } from './api-harness.ts';

const h = useApi();

/**
 * The OpenAPI 3.0 document shape, as far as a client generator relies on it. No OpenAPI
 * validator package is installed; this checks the structure the spec requires.
 */
const schemaObject: z.ZodType = z.lazy(() =>
  z.looseObject({
    type: z.union([z.string(), z.array(z.string())]).optional(),
    properties: z.record(z.string(), schemaObject).optional(),
    items: schemaObject.optional(),
    required: z.array(z.string()).optional(),
    $ref: z.string().startsWith('#/components/schemas/').optional(),
  }),
);
const parameter = z.looseObject({
  name: z.string().min(1),
  in: z.enum(['path', 'query', 'header', 'cookie']),
  required: z.boolean().optional(),
  schema: schemaObject,
});
const mediaTypes = z.record(z.string().regex(/^[a-z]+\/[a-z0-9.+-]+/), z.looseObject({ schema: schemaObject.optional() }));
const operation = z.looseObject({
  summary: z.string().optional(),
  tags: z.array(z.string()).optional(),
  parameters: z.array(parameter).optional(),
  requestBody: z.looseObject({ content: mediaTypes, required: z.boolean().optional() }).optional(),
  responses: z.record(z.string().regex(/^([1-5]\d\d|default)$/), z.looseObject({ description: z.string(), content: mediaTypes.optional() })),
});
const pathItem = z.partialRecord(z.enum(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']), operation);
const openApiDocument = z.looseObject({
  openapi: z.string().regex(/^3\.\d+\.\d+$/),
  info: z.looseObject({ title: z.string().min(1), version: z.string().min(1) }),
  paths: z.record(z.string().startsWith('/'), pathItem),
  components: z.looseObject({ securitySchemes: z.record(z.string(), z.looseObject({ type: z.string() })).optional() }).optional(),
  security: z.array(z.record(z.string(), z.array(z.string()))).optional(),
});

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3 document covering every route, generated from the zod schemas', async () => {
    const res = await h.call('GET', '/openapi.json');
    expect(res.statusCode).toBe(200);
    const doc = openApiDocument.parse(res.json());
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/healthz',
        '/metrics',
        '/readyz',
        '/v1/jobs/{jobId}',
        '/v1/jobs/{jobId}/cancel',
        '/v1/jobs/{jobId}/stream',
        '/v1/nodes',
        '/v1/nodes/{nodeId}',
        '/v1/nodes/{nodeId}/events',
        '/v1/nodes/{nodeId}/provision',
        '/v1/nodes/{nodeId}/state',
        '/v1/projections',
        '/v1/projections/rebuild',
      ].sort(),
    );
    // Every {param} in a path is declared as a required path parameter.
    for (const [path, item] of Object.entries(doc.paths)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const op of Object.values(item)) {
        const declared = (op.parameters ?? []).filter((p) => p.in === 'path');
        expect(declared.map((p) => p.name).sort(), path).toEqual(names.sort());
        expect(declared.every((p) => p.required === true), path).toBe(true);
      }
    }
    const create = doc.paths['/v1/nodes']?.post;
    const body = create?.requestBody?.content['application/json']?.schema as { properties: Record<string, { default?: unknown }>; required: string[]; additionalProperties?: boolean };
    expect(body.required.sort()).toEqual(['location', 'name', 'serverType']);
    expect(body.properties.image?.default).toBe('ubuntu-24.04');
    expect(body.properties.sshPort?.default).toBe(22);
    expect(body.additionalProperties).toBe(false);
    expect(create?.parameters?.some((p) => p.in === 'header' && p.name === 'idempotency-key')).toBe(true);
    expect(Object.keys(create?.responses ?? {})).toEqual(expect.arrayContaining(['202', '400', '401', '409']));
    expect(doc.components?.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });
});
