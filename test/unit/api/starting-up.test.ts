import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startingUp } from '../../../src/api/app';
import { contract } from '../../helpers/openapi';

/** What the API's port answers between taking the port and the app taking over (service.start). */
describe('the API port while the service starts', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer(startingUp(3));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise((resolve) => server.close(resolve)));

  async function ask(method: string, path: string) {
    const res = await fetch(`${base}${path}`, { method, ...(method === 'PATCH' && { body: '{}' }) });
    const contentType = res.headers.get('content-type') ?? '';
    const body: unknown = await res.json();
    const problems = contract.problems({ method, path, status: res.status, contentType, body });
    return { res, body, problems };
  }

  test('/health says the process answers, /ready says it is starting', async () => {
    const health = await ask('GET', '/health');
    expect(health.res.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });
    expect(health.problems).toEqual([]);

    const ready = await ask('GET', '/ready');
    expect(ready.res.status).toBe(503);
    expect(ready.body).toEqual({ status: 'starting' });
    expect(ready.problems).toEqual([]);
  });

  test('a sync request gets the 503 envelope with Retry-After, as when the API is busy', async () => {
    const { res, body, problems } = await ask('PATCH', '/v1/content/state/update');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(body).toMatchObject({
      params: { err: 'SERVICE_UNAVAILABLE', status: 'failed', errmsg: 'Service starting; retry after 3 s' },
      responseCode: 'SERVICE_UNAVAILABLE',
    });
    expect(problems).toEqual([]);
  });
});
