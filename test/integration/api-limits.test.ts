import { connect, type Socket } from 'node:net';
import type { EnrolmentSyncService } from '../../src/service';
import { createTestContext, readTopic, type TestContext } from '../helpers/context';
import { contract } from '../helpers/openapi';
import { enrolment, patch, seed, startService } from '../helpers/service';

const COURSE = 'do_limits';
const BATCH = 'batch_limits';
const BODY = JSON.stringify({ request: { userId: 'u1', batchId: BATCH, courseId: COURSE } });

/** A request whose body is still on its way: in flight until `finish()` sends the rest. */
function slowRequest(port: number): { finish(): void; answer: Promise<{ status: number; text: string }> } {
  const socket: Socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      resolve({ status: Number(text.split(' ')[1]), text });
    });
    socket.on('error', reject);
  });
  socket.write(
    `PATCH /v1/content/state/update HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY.slice(0, 10)}`,
  );
  return { finish: () => socket.write(BODY.slice(10)), answer };
}

describe('bounded work and graceful shutdown (real Kafka and Cassandra)', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext({ API_MAX_IN_FLIGHT: '2', API_RETRY_AFTER_S: '3', API_DRAIN_DELAY_MS: '1500' });
    await seed(ctx, [enrolment('u1', COURSE, BATCH)]);
  });
  afterAll(async () => {
    await ctx?.cleanup();
  });

  test('requests beyond API_MAX_IN_FLIGHT get 503 with Retry-After; health and metrics still answer', async () => {
    const service = await startService(ctx, { api: true, processor: false });
    try {
      const port = Number(new URL(service.url as string).port);
      const held = [slowRequest(port), slowRequest(port)];
      await new Promise((resolve) => setTimeout(resolve, 200));
      const refused = await fetch(`${service.url}/v1/content/state/update`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json' },
        body: BODY,
      });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('3');
      expect(await refused.json()).toMatchObject({
        responseCode: 'SERVICE_UNAVAILABLE',
        params: { err: 'SERVICE_UNAVAILABLE', errmsg: expect.stringMatching(/2 requests in flight/) },
      });
      expect((await fetch(`${service.url}/health`)).status).toBe(200);
      expect((await fetch(`${service.url}/ready`)).status).toBe(200);
      held.forEach((h) => h.finish());
      for (const h of held) expect((await h.answer).status).toBe(200);
      // Room again once they are answered.
      expect((await patch(`${service.url}/v1/content/state/update`, BODY)).status).toBe(200);
    } finally {
      await service.stop();
    }
  });

  test('security headers on every answer', async () => {
    const service = await startService(ctx, { api: true, processor: false });
    try {
      for (const path of ['/health', '/v1/content/state/update', '/nowhere']) {
        const res = await fetch(`${service.url}${path}`);
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(res.headers.get('x-frame-options')).toBe('DENY');
        expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
        expect(res.headers.get('cache-control')).toBe('no-store');
        expect(res.headers.get('x-powered-by')).toBeNull();
      }
    } finally {
      await service.stop();
    }
  });

  test('stop(): readiness 503 first, a drain delay, the request in flight finishes, then HTTP closes', async () => {
    const service: EnrolmentSyncService = await startService(ctx, { api: true, processor: false });
    const url = service.url as string;
    const port = Number(new URL(url).port);
    const inFlight = slowRequest(port);
    await new Promise((resolve) => setTimeout(resolve, 200));

    const stopped = service.stop();
    // During the drain delay the server still accepts, and says it is going away.
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'stopping' });

    // The request in flight needs Cassandra and Kafka: they are closed only after HTTP.
    inFlight.finish();
    const answer = await inFlight.answer;
    expect(answer.status).toBe(200);
    // Raw socket, so the contract check the fetch helpers do is done here.
    const [head = '', body = ''] = answer.text.split('\r\n\r\n');
    contract.check({
      method: 'PATCH',
      path: '/v1/content/state/update',
      status: answer.status,
      contentType: /^content-type: *([^\r\n]+)/im.exec(head)?.[1],
      body: JSON.parse(body),
    });
    const triggerId = /"triggerId":"([^"]+)"/.exec(answer.text)?.[1];
    expect(triggerId).toBeDefined();

    await stopped;
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    const records = await readTopic(ctx.kafka, ctx.settings.topics.trigger, {
      until: (r) => r.some((x) => JSON.parse(x.value.toString()).triggerId === triggerId),
    });
    expect(records.some((x) => JSON.parse(x.value.toString()).triggerId === triggerId)).toBe(true);
  });
});
