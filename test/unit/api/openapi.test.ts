import { createHash } from 'node:crypto';
import { STATUS_PATH, SYNC_PATHS } from '../../../src/api/app';
import { openApiDocument } from '../../../src/api/openapi';
import { DOCS_CSP, renderOpenApiPage } from '../../../src/api/openapi-page';
import { contract } from '../../helpers/openapi';

const ts = '2026-11-27 06:00:00:000+0000';
const success = {
  id: 'api.content.state.update',
  ver: 'v1',
  ts,
  params: { resmsgid: null, msgid: 'm1', err: null, status: 'success', errmsg: null },
  responseCode: 'OK',
  result: { response: 'Success', triggerId: '5b7c0c1d-8e27-4bf5-a299-8347f7e5abcf', users: 1, notEnrolled: [] },
};
const failure = (err: string, responseCode: string, result: object = {}) => ({
  id: 'api.content.state.update',
  ver: 'v1',
  ts,
  params: { resmsgid: null, msgid: 'm1', err, status: 'failed', errmsg: 'why' },
  responseCode,
  result,
});
const JSON_TYPE = 'application/json; charset=utf-8';
const sync = (status: number, body: unknown, method = 'PATCH', path = '/v1/content/state/update') =>
  contract.problems({ method, path, status, contentType: JSON_TYPE, body });

describe('the OpenAPI document', () => {
  test('is OpenAPI 3.1 and describes every route of the API and the health server', () => {
    expect(openApiDocument.openapi).toBe('3.1.0');
    const paths = Object.keys(openApiDocument.paths);
    for (const p of [...SYNC_PATHS, `${STATUS_PATH}/{triggerId}`, '/health', '/ready', '/metrics', '/openapi.json']) {
      expect(paths).toContain(p);
    }
    const components = openApiDocument.components as { securitySchemes: Record<string, unknown> };
    expect(components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
  });

  test('well formed: every $ref resolves, every operation has responses, each with a description', () => {
    const doc = JSON.parse(JSON.stringify(openApiDocument)) as Record<string, unknown>;
    const resolve = (pointer: string): unknown =>
      pointer
        .slice(2)
        .split('/')
        .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc);
    const refs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === '$ref') refs.push(v as string);
          else walk(v);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(20);
    for (const r of refs) expect([r, resolve(r) !== undefined]).toEqual([r, true]);

    const responseSets: Array<[string, Record<string, { description?: string }>]> = [
      ['x-unmatched-responses', doc['x-unmatched-responses'] as never],
      ['x-server-responses', doc['x-server-responses'] as never],
    ];
    for (const [path, item] of Object.entries(openApiDocument.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (method === 'parameters') continue;
        expect(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace', 'x-other-methods']).toContain(
          method,
        );
        responseSets.push([`${method} ${path}`, (op as { responses: never }).responses]);
      }
    }
    for (const [where, responses] of responseSets) {
      expect([where, Object.keys(responses).length > 0]).toEqual([where, true]);
      for (const [status, r] of Object.entries(responses)) {
        expect([where, status]).toEqual([where, expect.stringMatching(/^[1-5]\d\d$/)]);
        expect([where, status, typeof r.description]).toEqual([where, status, 'string']);
      }
    }
    for (const key of Object.keys(doc)) {
      expect(['openapi', 'info', 'servers', 'paths', 'components', 'security', 'tags']).toContain(
        key.startsWith('x-') ? 'paths' : key,
      );
    }
  });

  test('every error status the API answers on the sync paths is documented', () => {
    for (const path of SYNC_PATHS) {
      const responses = (openApiDocument.paths[path] as { patch: { responses: object } }).patch.responses;
      expect(Object.keys(responses).sort()).toEqual(['200', '400', '401', '403', '413', '415', '503']);
    }
  });

  test('the rendered page lists every operation, and its style is allowed by hash alone', () => {
    const page = renderOpenApiPage(openApiDocument);
    for (const path of Object.keys(openApiDocument.paths)) expect(page).toContain(path);
    expect(page).not.toContain('<script');
    expect(page).toContain('<h3 id="ErrorEnvelope">ErrorEnvelope</h3>');
    expect(page).toContain('&quot;api.content.state.sync.read&quot;');
    const style = /<style>(.*?)<\/style>/.exec(page)?.[1] ?? '';
    expect(DOCS_CSP).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(DOCS_CSP).toMatch(/^default-src 'none'/);
  });
});

describe('the contract check', () => {
  test('a documented answer passes', () => {
    expect(sync(200, success)).toEqual([]);
    expect(sync(200, success, 'PATCH', '/V1/User/Content/State/')).toEqual([]);
    expect(sync(400, failure('MANDATORY_PARAMETER_MISSING', 'CLIENT_ERROR', { field: 'userId' }))).toEqual([]);
    expect(sync(405, failure('METHOD_NOT_ALLOWED', 'CLIENT_ERROR'), 'PROPFIND')).toEqual([]);
    expect(sync(404, failure('RESOURCE_NOT_FOUND', 'RESOURCE_NOT_FOUND'), 'GET', '/v1/nope')).toEqual([]);
    expect(sync(431, failure('CLIENT_ERROR', 'CLIENT_ERROR'))).toEqual([]);
    expect(
      contract.problems({
        method: 'GET',
        path: '/ready',
        status: 503,
        contentType: JSON_TYPE,
        body: { status: 'stopping' },
      }),
    ).toEqual([]);
    expect(
      contract.problems({
        method: 'GET',
        path: '/metrics',
        status: 200,
        contentType: 'text/plain; version=0.0.4',
        body: '# HELP',
      }),
    ).toEqual([]);
  });

  test('an undocumented status fails', () => {
    expect(sync(500, failure('INTERNAL_ERROR', 'SERVER_ERROR'))[0]).toMatch(/status 500 is not documented/);
    expect(sync(201, success)[0]).toMatch(/status 201 is not documented/);
    expect(sync(404, failure('RESOURCE_NOT_FOUND', 'RESOURCE_NOT_FOUND'))[0]).toMatch(/status 404 is not documented/);
  });

  test('an undocumented path fails unless it answers the documented 404', () => {
    expect(sync(200, { anything: true }, 'GET', '/admin')[0]).toMatch(
      /GET \/admin → 200: status 200 is not documented/,
    );
    expect(sync(200, success, 'GET', '/v1/content/state/syncs')[0]).toMatch(/not documented/);
    // The status page's list is documented: a sync answer's body is not its body.
    expect(sync(200, success, 'GET', '/v1/content/state/sync')[0]).toMatch(/GET \/v1\/content\/state\/sync → 200/);
  });

  test('a body that differs from its schema fails, naming what differs', () => {
    const { triggerId: _dropped, ...noTrigger } = success.result;
    expect(sync(200, { ...success, result: noTrigger }).join()).toMatch(/triggerId/);
    expect(sync(200, { ...success, extra: 1 }).join()).toMatch(/additional/);
    expect(sync(200, { ...success, ts: '2026-11-27T06:00:00Z' }).join()).toMatch(/\/ts/);
    expect(sync(400, { status: 'bad' }).length).toBeGreaterThan(0);
    expect(sync(400, failure('X', 'NOT_A_CODE')).join()).toMatch(/responseCode/);
  });

  test('a media type that is not documented fails', () => {
    expect(
      contract.problems({
        method: 'PATCH',
        path: '/v1/content/state/update',
        status: 200,
        contentType: 'text/html',
        body: success,
      }),
    ).toEqual([expect.stringMatching(/Content-Type 'text\/html' is not one of application\/json/)]);
  });

  test('check() throws with the problems and the body', () => {
    expect(() =>
      contract.check({ method: 'GET', path: '/nope', status: 200, contentType: JSON_TYPE, body: { a: 1 } }),
    ).toThrow(/does not match \/openapi.json[\s\S]*status 200 is not documented[\s\S]*"a":1/);
  });
});
