import type { EnrolmentSyncService } from '../../src/service';
import { createTestContext, readTopic, type TestContext } from '../helpers/context';
import { createJwtTestContext, token } from '../helpers/jwt';
import { enrolment, patch, seed, startService } from '../helpers/service';

const COURSE = 'do_auth';
const BATCH = 'batch_auth';

const body = (userId: string | string[]) => ({ request: { userId, batchId: BATCH, courseId: COURSE } });

describe('API with JWT authentication on (real Kafka and Cassandra)', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;
  let url: string;
  const call = async (t: string | undefined, userId: string | string[]) =>
    patch(url, body(userId), {
      'Content-Type': 'application/json',
      ...(t !== undefined && { Authorization: `Bearer ${t}` }),
      // Ignored when a token is checked: the token says who asks.
      'X-Authenticated-Userid': 'someone-else',
    });

  beforeAll(async () => {
    ctx = await createJwtTestContext();
    await seed(ctx, [enrolment('alice', COURSE, BATCH), enrolment('bob', COURSE, BATCH)]);
    service = await startService(ctx, { api: true, processor: false });
    url = `${service.url}/v1/content/state/update`;
  });
  afterAll(async () => {
    await service?.stop();
    await ctx?.cleanup();
  });

  const triggers = async (until: (t: any[]) => boolean) =>
    (
      await readTopic(ctx.kafka, ctx.settings.topics.trigger, {
        until: (r) => until(r.map((x) => JSON.parse(x.value.toString()))),
        timeoutMs: 10000,
        settleMs: 500,
      })
    ).map((r) => JSON.parse(r.value.toString()));

  test("a valid token for one's own id: 200, and the trigger names the token subject as requester", async () => {
    const res = await call(await token('alice'), 'alice');
    expect(res.status).toBe(200);
    const triggerId = res.body.result.triggerId as string;
    const published = await triggers((t) => t.some((x) => x.triggerId === triggerId));
    expect(published.find((x) => x.triggerId === triggerId)).toMatchObject({
      userIds: ['alice'],
      requestedBy: 'alice',
    });
  });

  test.each([
    ['no token', async () => undefined, /bearer token missing/],
    ['an expired token', async () => token('alice', { exp: Math.floor(Date.now() / 1000) - 120 }), /expired/],
    ['a token signed with another key', async () => token('alice', { secret: 'z'.repeat(48) }), /signature/],
    ['a token for another audience', async () => token('alice', { aud: 'another-api' }), /aud/],
  ])('%s: 401 in the Sunbird envelope, with WWW-Authenticate', async (_name, make, reason) => {
    const t = await make();
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (t !== undefined) headers.Authorization = `Bearer ${t}`;
    const res = await fetch(url, { method: 'PATCH', headers, body: JSON.stringify(body('alice')) });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    const envelope = (await res.json()) as any;
    expect(envelope).toMatchObject({
      id: 'api.content.state.update',
      responseCode: 'UNAUTHORIZED',
      params: { status: 'failed', err: 'UNAUTHORIZED', errmsg: expect.stringMatching(reason) },
      result: {},
    });
  });

  test("another user's id: 403, and the answer is the same whether that user is enrolled or not", async () => {
    const t = await token('alice');
    const enrolled = await call(t, 'bob');
    const stranger = await call(t, 'nobody-at-all');
    const mixed = await call(t, ['alice', 'bob']);
    for (const res of [enrolled, stranger, mixed]) {
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({
        responseCode: 'FORBIDDEN',
        params: { status: 'failed', err: 'FORBIDDEN' },
        result: {},
      });
    }
    const strip = (b: any) => ({ ...b, ts: '', params: { ...b.params, msgid: '' } });
    expect(strip(enrolled.body)).toEqual(strip(stranger.body));
  });

  test('the admin role may sync anyone; a non-admin role may not', async () => {
    const admin = await call(await token('ops', { roles: ['admin'] }), ['alice', 'bob']);
    expect(admin.status).toBe(200);
    expect(admin.body.result).toMatchObject({ users: 2, notEnrolled: [] });
    const published = await triggers((t) => t.some((x) => x.triggerId === admin.body.result.triggerId));
    expect(published.find((x) => x.triggerId === admin.body.result.triggerId)).toMatchObject({ requestedBy: 'ops' });
    expect((await call(await token('ops', { roles: ['reader'] }), ['alice', 'bob'])).status).toBe(403);
  });

  test('the status endpoint needs the admin role', async () => {
    const res = await call(await token('alice'), 'alice');
    expect(res.status).toBe(200);
    const statusUrl = `${service.url}/v1/content/state/sync/${res.body.result.triggerId}`;
    const asUser = await fetch(statusUrl, { headers: { Authorization: `Bearer ${await token('alice')}` } });
    expect(asUser.status).toBe(403);
    expect(((await asUser.json()) as any).responseCode).toBe('FORBIDDEN');
    expect((await fetch(statusUrl)).status).toBe(401);
    const asAdmin = await fetch(statusUrl, {
      headers: { Authorization: `Bearer ${await token('ops', { roles: ['admin'] })}` },
    });
    expect(asAdmin.status).toBe(200);
    expect(((await asAdmin.json()) as any).result.status).toMatchObject({ triggerId: res.body.result.triggerId });
  });

  test('the contract is public: /openapi.json needs no token', async () => {
    const res = await fetch(`${service.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { openapi: string }).openapi).toBe('3.1.0');
  });

  test('no trigger was published for any refused request', async () => {
    const all = await triggers((t) => t.length >= 3);
    expect(all.map((t) => t.requestedBy).sort()).toEqual(['alice', 'alice', 'ops']);
  });
});

describe('API with authentication off (the single-machine default)', () => {
  test('no token needed; the gateway header names the requester', async () => {
    const ctx = await createTestContext();
    try {
      expect(ctx.settings.api.auth).toBe('off');
      await seed(ctx, [enrolment('carol', COURSE, BATCH)]);
      const service = await startService(ctx, { api: true, processor: false });
      try {
        const res = await patch(`${service.url}/v1/content/state/update`, body('carol'), {
          'Content-Type': 'application/json',
          'X-Authenticated-Userid': 'portal-user-7',
        });
        expect(res.status).toBe(200);
        const records = await readTopic(ctx.kafka, ctx.settings.topics.trigger, { until: (r) => r.length > 0 });
        expect(JSON.parse(records[0]!.value.toString())).toMatchObject({
          userIds: ['carol'],
          requestedBy: 'portal-user-7',
        });
      } finally {
        await service.stop();
      }
    } finally {
      await ctx.cleanup();
    }
  });
});
