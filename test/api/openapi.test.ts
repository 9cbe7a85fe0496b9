import { describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import { useApi } from './api-harness.ts';

const h = useApi();

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses?: Record<string, unknown>;
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, unknown> };
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3 document covering every route, generated from the zod schemas', async () => {
    const res = await h.call('GET', '/openapi.json');
    expect(res.statusCode).toBe(200);
    // The real OpenAPI 3 JSON schema, not our idea of it.
    const verdict = await new Validator().validate(res.json() as Parameters<Validator['validate']>[0]);
    expect(verdict.errors ?? [], JSON.stringify(verdict.errors)).toEqual([]);
    expect(verdict.valid).toBe(true);
    const doc = res.json() as OpenApiDocument;
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
        '/v1/nodes/{nodeId}/trust-host-key',
        '/v1/version',
        '/v1/events/{position}',
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
    const trust = doc.paths['/v1/nodes/{nodeId}/trust-host-key']?.post;
    const trustBody = trust?.requestBody?.content['application/json']?.schema as { properties: Record<string, { pattern?: string }>; required: string[] };
    expect(trustBody.required).toEqual(['fingerprint']);
    expect(trustBody.properties.fingerprint?.pattern).toContain('SHA256');
    expect(Object.keys(trust?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '401', '404', '409']));
    expect(body.properties).toHaveProperty('expectPlaybook');
    expect(doc.components?.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });
});
