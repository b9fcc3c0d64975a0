import { connect } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import type { EnrolmentSyncService } from '../../src/service';
import { createTestContext, type TestContext } from '../helpers/context';
import { contract } from '../helpers/openapi';
import { enrolment, seed, startService } from '../helpers/service';

/**
 * A new user's worst day: thousands of generated malformed requests (bodies that do not
 * decompress, truncated and mistyped JSON, huge bodies and headers, odd methods, paths and
 * framing), sent over raw sockets so that nothing is tidied up by an HTTP client. Every answer
 * must be a 4xx (or an honest 200/400 for a request that happens to be valid) in the Sunbird
 * envelope, and the metrics must not grow a label per random URL.
 */
const REQUESTS = 5000;
const CONCURRENCY = 12;
const COURSE = 'do_fuzz';
const BATCH = 'batch_fuzz';
const PATH = '/v1/content/state/update';

/** Deterministic, so a failure can be replayed: mulberry32. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  kind: string;
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Framing written as is (no Content-Length added). */
  raw?: Buffer;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function generator(seed: number) {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const junkBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const ascii = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(33 + int(94)))
      .join('')
      .replace(/[?#]/g, '_');
  const oddValue = (): unknown =>
    pick([
      null,
      true,
      0,
      -1,
      1e308,
      '',
      ' ',
      'x'.repeat(300),
      [],
      [null],
      {},
      { $gt: '' },
      '\u0000',
      '\ud800',
      'u1',
      ['u1', 'u1'],
      Array.from({ length: 1200 }, (_, i) => `u${i}`),
      [1, 2, 3],
      'ümlaut-ß-😀',
      "'; DROP TABLE user_enrolments; --",
    ]);
  const validish = () => ({ request: { userId: 'u1', batchId: BATCH, courseId: COURSE } });
  const mistyped = () => {
    const body: Record<string, unknown> = { request: { ...validish().request } };
    const req = body.request as Record<string, unknown>;
    const field = pick(['userId', 'batchId', 'courseId', 'collectionId', 'request', 'extra']);
    if (field === 'request') body.request = oddValue();
    else req[field] = oddValue();
    if (rnd() < 0.2) delete req[pick(['userId', 'batchId', 'courseId'])];
    return body;
  };
  const json = (v: unknown) => Buffer.from(JSON.stringify(v) ?? 'undefined');

  const compressors: Record<string, (b: Buffer) => Buffer> = {
    gzip: (b) => gzipSync(b),
    deflate: (b) => deflateSync(b),
    br: (b) => brotliCompressSync(b),
  };

  return (): Case => {
    const kind = pick([
      'compressed-corrupt',
      'compressed-truncated',
      'compressed-wrong-encoding',
      'compressed-bomb-ish',
      'compressed-unknown',
      'truncated-json',
      'mistyped',
      'junk-bytes',
      'huge-body',
      'huge-header',
      'odd-method',
      'odd-path',
      'odd-content-type',
      'bad-framing',
      'no-body',
    ] as const);
    const base: Case = {
      kind,
      method: 'PATCH',
      path: PATH,
      headers: [['Content-Type', 'application/json']],
      body: json(mistyped()),
    };
    switch (kind) {
      case 'compressed-corrupt': {
        const enc = pick(['gzip', 'deflate', 'br']);
        const good = compressors[enc]!(json(validish()));
        const bad = Buffer.from(good);
        for (let i = 0; i < 1 + int(6); i++) bad[int(bad.length)] = int(256);
        return {
          ...base,
          headers: [...base.headers, ['Content-Encoding', enc]],
          body: rnd() < 0.5 ? bad : junkBytes(1 + int(200)),
        };
      }
      case 'compressed-truncated': {
        const enc = pick(['gzip', 'deflate', 'br']);
        const good = compressors[enc]!(json(mistyped()));
        return {
          ...base,
          headers: [...base.headers, ['Content-Encoding', enc]],
          body: good.subarray(0, int(good.length)),
        };
      }
      case 'compressed-wrong-encoding': {
        // Compressed one way, declared another.
        const [enc, declared] = pick([
          ['gzip', 'br'],
          ['br', 'gzip'],
          ['deflate', 'gzip'],
          ['gzip', 'deflate'],
        ] as const);
        return {
          ...base,
          headers: [...base.headers, ['Content-Encoding', declared]],
          body: compressors[enc]!(json(validish())),
        };
      }
      case 'compressed-bomb-ish': {
        // Small on the wire, far over the body limit once inflated.
        const enc = pick(['gzip', 'deflate', 'br']);
        return {
          ...base,
          headers: [...base.headers, ['Content-Encoding', enc]],
          body: compressors[enc]!(Buffer.from(`{"request":{"userId":"${'a'.repeat(2_000_000)}"}}`)),
        };
      }
      case 'compressed-unknown':
        return {
          ...base,
          headers: [
            ...base.headers,
            ['Content-Encoding', pick(['zstd', 'compress', 'x-gzip, br', 'gzip, gzip', 'lzma', ''])],
          ],
          body: junkBytes(int(100)),
        };
      case 'truncated-json': {
        const text = JSON.stringify(rnd() < 0.5 ? validish() : mistyped());
        return { ...base, body: Buffer.from(text.slice(0, int(text.length))) };
      }
      case 'mistyped':
        return base;
      case 'junk-bytes':
        return { ...base, body: junkBytes(int(2000)) };
      case 'huge-body':
        return { ...base, body: Buffer.from(`{"request":{"courseId":"${'x'.repeat(300_000 + int(200_000))}"}}`) };
      case 'huge-header':
        return { ...base, headers: [...base.headers, ['X-Fill', 'h'.repeat(17_000 + int(60_000))]] };
      case 'odd-method':
        return {
          ...base,
          method: pick([
            'GET',
            'POST',
            'PUT',
            'DELETE',
            'OPTIONS',
            'TRACE',
            'PROPFIND',
            'PURGE',
            'LINK',
            'MKCOL',
            'BREW',
            'patch',
            'CONNECT',
          ]),
        };
      case 'odd-path':
        return {
          ...base,
          path: pick([
            () => `/${ascii(1 + int(60))}`,
            () => `/v1/content/state/update/${ascii(8)}`,
            () => `/v1/%${ascii(2)}`,
            () => '/%E0%A4%A',
            () => `/${'a/'.repeat(500)}`,
            () => `/../../etc/passwd`,
            () => `//v1//content/state/update`,
            () => `/V1/CONTENT/STATE/UPDATE`,
            () => `/v1/content/state/update;${ascii(5)}`,
            () => `/metrics/${ascii(4)}`,
            () => `/${encodeURIComponent('ümlaut😀')}/${int(1e9)}`,
            () => `*`,
          ])(),
        };
      case 'odd-content-type':
        return {
          ...base,
          headers: [
            [
              'Content-Type',
              pick([
                'application/json; charset=utf-16',
                'application/json; charset=latin-9',
                'text/plain',
                'application/x-www-form-urlencoded',
                'multipart/form-data; boundary=x',
                'application/json; charset=',
                'application/merge-patch+json',
                '',
                ';;;',
              ]),
            ],
          ],
        };
      case 'bad-framing': {
        const head = `PATCH ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n`;
        const raw = pick([
          () => `${head}Content-Length: abc\r\n\r\n{}`,
          () => `${head}Content-Length: 2\r\nContent-Length: 5\r\n\r\n{}`,
          () => `${head}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
          () => `${head}Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
          () => `${head}Transfer-Encoding: chunked\r\n\r\n3\r\n{"r\r\n0\r\n\r\n`,
          () => `PATCH ${PATH} HTTP/9.9\r\nHost: x\r\n\r\n`,
          () => `GARBAGE\r\n\r\n`,
          () => `PATCH ${PATH}\r\n\r\n`,
          () => `PATCH /v1 /x HTTP/1.1\r\nHost: x\r\n\r\n`,
          () => `${head}Bad Header Line\r\n\r\n{}`,
          () => `${head}X-Nul: a\u0000b\r\n\r\n{}`,
        ])();
        return { ...base, raw: Buffer.from(raw, 'latin1') };
      }
      case 'no-body':
        return { ...base, body: Buffer.alloc(0) };
    }
  };
}

function send(port: number, c: Case): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within 20 s to a ${c.kind} request`)), 20000);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // The server may answer and close before reading all of a huge upload: the answer counts.
      if ((err.code === 'ECONNRESET' || err.code === 'EPIPE') && chunks.length > 0) finish();
      else reject(new Error(`${c.kind}: ${err.message}`));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      finish();
    });
    let done = false;
    function finish(): void {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = split >= 0 ? text.slice(0, split) : text;
      const [statusLine, ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      let body = split >= 0 ? text.slice(split + 4) : '';
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: Number(statusLine?.split(' ')[1] ?? 0), headers, body });
    }
    socket.on('connect', () => {
      if (c.raw) {
        socket.write(c.raw);
        return;
      }
      const head = [
        `${c.method} ${c.path} HTTP/1.1`,
        'Host: 127.0.0.1',
        'Connection: close',
        `X-msgId: fuzz-${c.kind}`,
      ];
      for (const [k, v] of c.headers) head.push(`${k}: ${v}`);
      head.push(`Content-Length: ${c.body.length}`);
      socket.write(Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), c.body]));
    });
  });
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const nl = rest.indexOf('\r\n');
    if (nl < 0) return out;
    const size = parseInt(rest.slice(0, nl), 16);
    if (!size) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}

describe('fuzz: generated malformed requests against the real service', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;
  let port: number;

  beforeAll(async () => {
    ctx = await createTestContext({ API_MAX_IN_FLIGHT: '1000' });
    await seed(ctx, [enrolment('u1', COURSE, BATCH)]);
    service = await startService(ctx, { api: true, processor: false });
    port = Number(new URL(service.url as string).port);
  });
  afterAll(async () => {
    await service?.stop();
    await ctx?.cleanup();
  });

  test(`${REQUESTS} requests: 0 × 5xx, every answer an envelope the OpenAPI document describes, metrics labels bounded`, async () => {
    const next = generator(Number(process.env.FUZZ_SEED ?? 20261127));
    const cases = Array.from({ length: REQUESTS }, next);
    const statuses = new Map<string, number>();
    const failures: string[] = [];
    let problems = 0;
    let contractFailures = 0;
    let index = 0;
    const worker = async (): Promise<void> => {
      while (index < cases.length) {
        const c = cases[index++] as Case;
        const answer = await send(port, c);
        statuses.set(`${c.kind} ${answer.status}`, (statuses.get(`${c.kind} ${answer.status}`) ?? 0) + 1);
        let envelope: any;
        try {
          envelope = JSON.parse(answer.body);
        } catch {
          envelope = undefined;
        }
        const isEnvelope =
          envelope?.id === 'api.content.state.update' &&
          envelope?.ver === 'v1' &&
          typeof envelope?.params?.status === 'string' &&
          typeof envelope?.responseCode === 'string' &&
          typeof envelope?.result === 'object';
        const problem =
          answer.status >= 500 || answer.status < 200
            ? `status ${answer.status}`
            : c.method === 'HEAD' || isEnvelope
              ? undefined
              : `not an envelope: ${answer.body.slice(0, 120)}`;
        // And it is one the contract describes (a raw request may not parse: no path then).
        const contractProblems = contract.problems({
          method: c.method,
          path: c.path,
          status: answer.status,
          contentType: answer.headers['content-type'],
          body: envelope ?? answer.body,
        });
        if (contractProblems.length > 0) {
          contractFailures++;
          if (failures.length < 20) failures.push(`${c.kind}: ${contractProblems.join('; ')}`);
        }
        if (problem) {
          problems++;
          if (failures.length < 20) failures.push(`${c.kind} ${c.method} ${c.path.slice(0, 60)}: ${problem}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(failures).toEqual([]);
    expect(problems).toBe(0);
    expect(contractFailures).toBe(0);
    const fiveHundreds = [...statuses].filter(([k]) => Number(k.split(' ').pop()) >= 500);
    expect(fiveHundreds).toEqual([]);
    // Every category was exercised.
    const kinds = new Set([...statuses.keys()].map((k) => k.split(' ')[0]));
    expect(kinds.size).toBe(15);

    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    const series = metrics.split('\n').filter((l) => l.startsWith('sync_api_requests_total{'));
    const routes = new Set(series.map((l) => /route="([^"]*)"/.exec(l)?.[1]));
    expect([...routes].every((r) => ['sync', 'health', 'ready', 'metrics', 'unmatched'].includes(r as string))).toBe(
      true,
    );
    // Routes × statuses: a handful, however many random URLs were tried.
    expect(series.length).toBeLessThanOrEqual(30);
    const histogramSeries = metrics.split('\n').filter((l) => l.startsWith('sync_api_request_seconds_count{'));
    expect(histogramSeries.length).toBeLessThanOrEqual(5);
  });
});
