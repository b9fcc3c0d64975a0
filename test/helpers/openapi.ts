import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { openApiDocument, type OpenApiDocument } from '../../src/api/openapi';

/**
 * Checks an API answer against the OpenAPI document (src/api/openapi.ts): the path and method
 * must be described, the status listed for that operation, the media type one of its types and
 * the body valid against its schema (JSON Schema 2020-12, as OpenAPI 3.1 uses).
 *
 * Integration tests get it without asking: `patch()` (test/helpers/service.ts) checks every
 * answer, and a global `fetch` wrapper (test/helpers/openapi-setup.ts) checks every answer from
 * an API registered with `trackApi` (startService registers the services it starts).
 */
export interface Exchange {
  method: string;
  /** The request target; a query string is ignored. Undefined: the request line did not parse. */
  path: string | undefined;
  status: number;
  /** The response's Content-Type header, if any. */
  contentType?: string | null;
  /** The parsed JSON body, or the text when it is not JSON. */
  body: unknown;
}

const OPENAPI_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
const DOC_ID = 'urn:enrolment-sync:openapi';

type Obj = Record<string, unknown>;

export class ContractChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly templates: Array<{ template: string; pattern: RegExp }>;

  constructor(private readonly doc: OpenApiDocument = openApiDocument) {
    this.ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
    this.ajv.addSchema({ ...doc, $id: DOC_ID });
    // As express routes: case-insensitive, a trailing slash allowed, a parameter one segment.
    this.templates = Object.keys(doc.paths).map((template) => {
      const source = template
        .split(/(\{[^}]+\})/)
        .map((part) => (part.startsWith('{') ? '[^/]+' : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
        .join('');
      return { template, pattern: new RegExp(`^${source}/?$`, 'i') };
    });
  }

  /** The problems with an answer; empty when it matches the contract. */
  problems(x: Exchange): string[] {
    const where = `${x.method} ${x.path ?? '(unparsed request)'} → ${x.status}`;
    const path = x.path?.split('?')[0];
    const matched = path === undefined ? undefined : this.templates.find((t) => t.pattern.test(path));
    let responses: Obj | undefined;
    let pointer: string;
    if (!matched) {
      // Unmatched paths, and requests the HTTP server could not parse, answer in the envelope.
      const key = path === undefined ? 'x-server-responses' : 'x-unmatched-responses';
      responses = this.doc[key] as Obj;
      pointer = `/${key}`;
    } else {
      const item = this.doc.paths[matched.template] as Obj;
      const method = x.method.toLowerCase() === 'head' && !item.head ? 'get' : x.method.toLowerCase();
      const key = OPENAPI_METHODS.has(method) && item[method] ? method : 'x-other-methods';
      const op = item[key] as Obj | undefined;
      const base = `/paths/${escapePointer(matched.template)}`;
      if (op) {
        responses = op.responses as Obj;
        pointer = `${base}/${key}/responses`;
      } else {
        responses = this.doc['x-unmatched-responses'] as Obj;
        pointer = '/x-unmatched-responses';
      }
    }
    let response = responses[String(x.status)] as Obj | undefined;
    if (!response) {
      // The HTTP server may answer any request so, before routing (hardenServer).
      response = (this.doc['x-server-responses'] as Obj)[String(x.status)] as Obj | undefined;
      pointer = '/x-server-responses';
    }
    if (!response) {
      const documented = Object.keys(responses).join(', ');
      return [`${where}: status ${x.status} is not documented (documented: ${documented})`];
    }
    pointer = `${pointer}/${x.status}`;
    const content = response.content as Obj | undefined;
    if (x.method.toUpperCase() === 'HEAD' || !content) return [];
    const mediaType = (x.contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (!(mediaType in content)) {
      return [`${where}: Content-Type '${x.contentType ?? ''}' is not one of ${Object.keys(content).join(', ')}`];
    }
    const validate = this.validator(`${pointer}/content/${escapePointer(mediaType)}/schema`);
    if (validate(x.body)) return [];
    return (validate.errors ?? []).map(
      (e) => `${where}: body${e.instancePath} ${e.message ?? 'is invalid'} ${JSON.stringify(e.params)}`,
    );
  }

  /** Throws when the answer does not match the contract, saying how and showing the body. */
  check(x: Exchange): void {
    const problems = this.problems(x);
    if (problems.length === 0) return;
    const body = typeof x.body === 'string' ? x.body : JSON.stringify(x.body);
    throw new Error(
      `the answer does not match /openapi.json:\n  - ${problems.join('\n  - ')}\n  body: ${body?.slice(0, 500)}`,
    );
  }

  private validator(pointer: string): ValidateFunction {
    let v = this.validators.get(pointer);
    if (!v) {
      v = this.ajv.compile({ $ref: `${DOC_ID}#${pointer}` });
      this.validators.set(pointer, v);
    }
    return v;
  }
}

const escapePointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

export const contract = new ContractChecker();

const apiOrigins = new Set<string>();

/** Every answer `fetch` gets from this API from now on is checked against the contract. */
export function trackApi(baseUrl: string | undefined): void {
  if (baseUrl) apiOrigins.add(new URL(baseUrl).origin);
}

/** Wraps the global fetch once per test file: answers from tracked APIs are checked. */
export function installFetchCheck(): void {
  const original = globalThis.fetch as typeof fetch & { contractChecked?: boolean };
  if (original.contractChecked) return;
  const checked = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await original(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!apiOrigins.has(url.origin)) return res;
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const text = await res.clone().text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: checked as text against the documented media type
    }
    contract.check({
      method,
      path: url.pathname,
      status: res.status,
      contentType: res.headers.get('content-type'),
      body,
    });
    return res;
  };
  globalThis.fetch = Object.assign(checked, { contractChecked: true }) as unknown as typeof fetch;
}
