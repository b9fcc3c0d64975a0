import { createHash } from 'node:crypto';
import type { OpenApiDocument } from './openapi';

/**
 * The OpenAPI document as a plain HTML page, rendered on the server: no script, no CDN (there is
 * no internet at run time), one inline style allowed by its hash so the API's strict
 * Content-Security-Policy stays strict.
 */
const STYLE =
  'body{font:14px/1.5 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em}' +
  'code{background:#f3f3f3;padding:0 .2em}h2{margin-top:2em;border-bottom:1px solid #ddd}' +
  'pre{background:#f7f7f7;padding:.5em;overflow:auto}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3em;text-align:left;vertical-align:top}';

export const DOCS_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; frame-ancestors 'none'`;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace', 'x-other-methods'];

const escape = (text: unknown): string =>
  String(text ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );

type Obj = Record<string, unknown>;

function responsesTable(responses: Obj): string {
  const rows = Object.entries(responses).map(([status, r]) => {
    const res = r as Obj;
    const types = Object.keys((res.content as Obj | undefined) ?? {}).join(', ');
    return `<tr><td><code>${escape(status)}</code></td><td>${escape(res.description)}</td><td>${escape(types)}</td></tr>`;
  });
  return `<table><tr><th>status</th><th>when</th><th>body</th></tr>${rows.join('')}</table>`;
}

export function renderOpenApiPage(doc: OpenApiDocument): string {
  const info = doc.info as Obj;
  const sections: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = (item as Obj)[method] as Obj | undefined;
      if (!op) continue;
      const verb = method === 'x-other-methods' ? 'any other method' : method.toUpperCase();
      const auth = Array.isArray(op.security) ? '<p>Bearer JWT when API_AUTH=jwt.</p>' : '';
      sections.push(
        `<h2><code>${escape(verb)} ${escape(path)}</code></h2><p>${escape(op.summary)}</p>` +
          (op.description ? `<p>${escape(op.description)}</p>` : '') +
          auth +
          responsesTable(op.responses as Obj),
      );
    }
  }
  const schemas = ((doc.components as Obj | undefined)?.schemas ?? {}) as Obj;
  const schemaSections = Object.entries(schemas).map(
    ([name, schema]) =>
      `<h3 id="${escape(name)}">${escape(name)}</h3><pre>${escape(JSON.stringify(schema, null, 2))}</pre>`,
  );
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(info.title)} API</title>` +
    `<style>${STYLE}</style></head><body><h1>${escape(info.title)} API ${escape(info.version)}</h1>` +
    `<p>${escape(info.description)}</p><p>The machine-readable contract: <a href="/openapi.json">/openapi.json</a> ` +
    `(OpenAPI ${escape(doc.openapi)}).</p>${sections.join('')}<h2>Schemas</h2>${schemaSections.join('')}</body></html>`
  );
}
