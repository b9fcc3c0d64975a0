import net from 'node:net';
import { openApiDocument } from '../../src/api/openapi';
import { DOCS_CSP } from '../../src/api/openapi-page';
import { loadConfig } from '../../src/config';
import { EnrolmentSyncService } from '../../src/service';
import { syncEventAvroType } from '../../src/schemas';
import { createTestContext, readTopic, type TestContext } from '../helpers/context';
import { contract } from '../helpers/openapi';
import { enrolment, patch, seed, startService } from '../helpers/service';

const COURSE = 'do_course_api';
const BATCH = 'batch_api';
const TS = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}:\d{3}\+0000$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('PATCH /v1/content/state/update against real Kafka and Cassandra', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;
  let base: string;
  const url = (path = '/v1/content/state/update'): string => `${base}${path}`;

  beforeAll(async () => {
    ctx = await createTestContext({ API_MAX_USERS: '5' });
    await seed(ctx, [
      enrolment('u1', COURSE, BATCH),
      enrolment('u2', COURSE, BATCH),
      enrolment('u3', COURSE, BATCH, { status: 2 }),
      enrolment('inactive-1', COURSE, BATCH, { active: false }),
      enrolment('u1', COURSE, 'another_batch'),
    ]);
    service = await startService(ctx, { api: true, processor: true });
    base = service.url as string;
  });
  afterAll(async () => {
    await service.stop();
    await ctx.cleanup();
  });

  const eventsFor = async (userIds: string[], extraWaitMs = 1500) => {
    const records = await readTopic(ctx.kafka, ctx.settings.topics.output, {
      until: (r) => userIds.every((u) => r.some((x) => x.key === u)),
      settleMs: extraWaitMs,
    });
    return records.map((r) => ({ key: r.key, event: JSON.parse(r.value.toString()) }));
  };

  test('one userId: 200 with the design envelope, and one event for that user', async () => {
    const res = await patch(
      url(),
      { request: { userId: 'u1', batchId: BATCH, courseId: COURSE } },
      {
        'Content-Type': 'application/json',
        'X-msgId': 'my-msg-id-1',
      },
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: 'api.content.state.update',
      ver: 'v1',
      ts: expect.stringMatching(TS),
      params: { resmsgid: null, msgid: 'my-msg-id-1', err: null, status: 'success', errmsg: null },
      responseCode: 'OK',
      result: { response: 'Success', triggerId: expect.stringMatching(UUID), users: 1, notEnrolled: [] },
    });
    const events = await eventsFor(['u1']);
    const forU1 = events.filter((e) => e.key === 'u1' && e.event.edata.batchId === BATCH);
    expect(forU1).toHaveLength(1);
    const event = forU1[0]!.event;
    expect(Object.keys(event)).toEqual(['eid', 'ets', 'mid', 'actor', 'context', 'object', 'edata']);
    expect(event).toEqual({
      eid: 'BE_JOB_REQUEST',
      ets: expect.any(Number),
      mid: expect.stringMatching(/^LP\.\d{13}\.[0-9a-f-]{36}$/),
      actor: { type: 'System', id: 'Course Batch Updater' },
      context: { pdata: { ver: '1.0', id: 'org.sunbird.platform' } },
      object: { type: 'CourseBatchEnrolment', id: `${BATCH}_u1` },
      edata: { action: 'user-enrolment-sync', iteration: 1, batchId: BATCH, userId: 'u1', courseId: COURSE },
    });
    expect(event.mid.startsWith(`LP.${event.ets}.`)).toBe(true);
    expect(syncEventAvroType().isValid(event)).toBe(true);
  });

  test('a list, the collectionId alias, the second path; partly enrolled → events for the enrolled only', async () => {
    const res = await patch(url('/v1/user/content/state'), {
      request: { userId: ['u2', 'u3', 'u2', 'nobody', 'inactive-1'], batchId: BATCH, collectionId: COURSE },
    });
    expect(res.status).toBe(200);
    expect(res.body.result).toMatchObject({ response: 'Success', users: 2, notEnrolled: ['nobody', 'inactive-1'] });
    expect(res.body.params.msgid).toMatch(UUID);
    const events = await eventsFor(['u2', 'u3']);
    const keys = events.map((e) => e.key);
    expect(keys.filter((k) => k === 'u2')).toHaveLength(1);
    expect(keys.filter((k) => k === 'u3')).toHaveLength(1);
    expect(keys).not.toContain('nobody');
    expect(keys).not.toContain('inactive-1');
  });

  test('nobody enrolled → the design 400, exactly', async () => {
    const res = await patch(
      url(),
      { request: { userId: ['ghost', 'inactive-1'], batchId: BATCH, courseId: COURSE } },
      {
        'Content-Type': 'application/json',
        'X-msgId': '8e27cbf5-e299-43b0-bca7-8347f7e5abcf',
      },
    );
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      id: 'api.content.state.update',
      ver: 'v1',
      ts: expect.stringMatching(TS),
      params: {
        resmsgid: null,
        msgid: '8e27cbf5-e299-43b0-bca7-8347f7e5abcf',
        err: 'CLIENT_ERROR',
        status: 'failed',
        errmsg: 'No users enrolled',
      },
      responseCode: 'CLIENT_ERROR',
      result: {
        response: `Could not find any enrollments for userId ['ghost', 'inactive-1'], batchId '${BATCH}' and courseId '${COURSE}'`,
      },
    });
  });

  const invalid: Array<[string, unknown, string, string]> = [
    ['no request', {}, 'request', 'MANDATORY_PARAMETER_MISSING'],
    ['courseId first, even with everything else missing', { request: {} }, 'courseId', 'MANDATORY_PARAMETER_MISSING'],
    [
      'courseId of the wrong type',
      { request: { courseId: 7, batchId: 'b', userId: 'u' } },
      'courseId',
      'INVALID_PARAMETER_TYPE',
    ],
    [
      'empty collectionId',
      { request: { collectionId: ' ', userId: 'u' } },
      'collectionId',
      'MANDATORY_PARAMETER_MISSING',
    ],
    [
      'batchId after courseId',
      { request: { courseId: COURSE, userId: 'u' } },
      'batchId',
      'MANDATORY_PARAMETER_MISSING',
    ],
    ['userId last', { request: { courseId: COURSE, batchId: BATCH } }, 'userId', 'MANDATORY_PARAMETER_MISSING'],
    [
      'empty userId list',
      { request: { courseId: COURSE, batchId: BATCH, userId: [] } },
      'userId',
      'MANDATORY_PARAMETER_MISSING',
    ],
    [
      'a blank id in the list',
      { request: { courseId: COURSE, batchId: BATCH, userId: ['u1', ''] } },
      'userId[1]',
      'MANDATORY_PARAMETER_MISSING',
    ],
    [
      'a number in the list',
      { request: { courseId: COURSE, batchId: BATCH, userId: ['u1', 5] } },
      'userId[1]',
      'INVALID_PARAMETER_TYPE',
    ],
    [
      'userId an object',
      { request: { courseId: COURSE, batchId: BATCH, userId: { a: 1 } } },
      'userId',
      'INVALID_PARAMETER_TYPE',
    ],
    [
      'over the cap',
      { request: { courseId: COURSE, batchId: BATCH, userId: ['a', 'b', 'c', 'd', 'e', 'f'] } },
      'userId',
      'TOO_MANY_USERS',
    ],
    ['body an array', [1, 2], 'request', 'INVALID_PARAMETER_TYPE'],
  ];
  test.each(invalid.map(([name, body, field, err]) => [name, field, body, err] as const))(
    'validation: %s → 400 naming %s',
    async (_name, field, body, err) => {
      const res = await patch(url(), body);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        id: 'api.content.state.update',
        ver: 'v1',
        ts: expect.stringMatching(TS),
        params: {
          resmsgid: null,
          msgid: expect.any(String),
          err,
          status: 'failed',
          errmsg: expect.stringContaining(field.replace(/\[\d+\]$/, '')),
        },
        responseCode: 'CLIENT_ERROR',
        result: { field },
      });
    },
  );

  test('duplicates collapse before the cap is counted', async () => {
    const res = await patch(url(), {
      request: { courseId: COURSE, batchId: BATCH, userId: ['u1', 'u1', 'u1', 'u1', 'u1', 'u1', 'u1'] },
    });
    expect(res.status).toBe(200);
    expect(res.body.result.users).toBe(1);
  });

  test('malformed JSON, wrong content type, oversized body, wrong method, unknown path: 4xx envelopes', async () => {
    const malformed = await patch(url(), '{"request": {', { 'Content-Type': 'application/json' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.params.err).toBe('INVALID_JSON');

    const wrongType = await patch(url(), 'userId=u1', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(wrongType.status).toBe(415);
    expect(wrongType.body.params).toMatchObject({ err: 'UNSUPPORTED_MEDIA_TYPE', status: 'failed' });

    const big = await patch(url(), JSON.stringify({ request: { courseId: 'x'.repeat(300000) } }));
    expect(big.status).toBe(413);
    expect(big.body.params.err).toBe('PAYLOAD_TOO_LARGE');

    const get = await fetch(url());
    expect(get.status).toBe(405);
    expect(((await get.json()) as { params: { err: string } }).params.err).toBe('METHOD_NOT_ALLOWED');

    const unknown = await patch(url('/v1/nope'), {});
    expect(unknown.status).toBe(404);
    expect(unknown.body.responseCode).toBe('RESOURCE_NOT_FOUND');
  });

  test('the contract: /openapi.json is the document the tests check against, /docs renders it without scripts', async () => {
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(openApiDocument)));
    const docs = await fetch(`${base}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    expect(docs.headers.get('content-security-policy')).toBe(DOCS_CSP);
    const html = await docs.text();
    expect(html).toContain('/v1/content/state/sync/{triggerId}');
    expect(html).not.toContain('<script');
  });

  test('an answer the contract does not describe fails the request helpers', async () => {
    // A path the API does not have, if it answered 200, would fail: the checker is live here.
    expect(() =>
      contract.check({ method: 'GET', path: '/v1/nope', status: 200, contentType: 'application/json', body: {} }),
    ).toThrow(/not documented/);
    // And the real 404 for it is the documented one.
    const res = await fetch(`${base}/v1/nope`);
    expect(res.status).toBe(404);
  });

  test('health, readiness and metrics', async () => {
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/sync_api_requests_total\{route="sync",status="200"\} \d+/);
  });
});

describe('dependencies unreachable', () => {
  test('Cassandra unreachable → 503 envelope within the deadline; Kafka lost → 503; no Cassandra at start → clear error', async () => {
    const ctx = await createTestContext();
    try {
      await seed(ctx, [enrolment('u1', COURSE, BATCH)]);
      // A real driver pointed at a port where nothing listens, and a real producer whose broker
      // goes away: the service starts against the real servers, then loses them.
      const settings = loadConfig({
        SYNC_ENV: ctx.settings.env,
        CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace,
        API_PORT: '0',
        API_DEPENDENCY_TIMEOUT_MS: '1500',
        LOG_LEVEL: 'silent',
        // The producer adapter under test (make test-confluent runs this file again with librdkafka).
        ...(process.env.KAFKA_CLIENT !== undefined && { KAFKA_CLIENT: process.env.KAFKA_CLIENT }),
      });
      const service = new EnrolmentSyncService(settings, ctx.log);
      await service.start({ api: true, processor: false });
      try {
        // Reach into the running service's Cassandra session by shutting it: every query now fails.
        await (service as unknown as { cassandra: { shutdown(): Promise<void> } }).cassandra.shutdown();
        const started = Date.now();
        const res = await patch(`${service.url}/v1/content/state/update`, {
          request: { userId: 'u1', batchId: BATCH, courseId: COURSE },
        });
        expect(res.status).toBe(503);
        expect(res.body.params).toMatchObject({ err: 'SERVICE_UNAVAILABLE', status: 'failed' });
        expect(res.body.responseCode).toBe('SERVICE_UNAVAILABLE');
        expect(Date.now() - started).toBeLessThan(10000);
      } finally {
        await service.stop();
      }

      const kafkaLost = new EnrolmentSyncService(settings, ctx.log);
      await kafkaLost.start({ api: true, processor: false });
      try {
        const producers = (kafkaLost as unknown as { apiProducers: Array<{ close(): Promise<void> }> }).apiProducers;
        await Promise.all(producers.map((p) => p.close()));
        const res = await patch(`${kafkaLost.url}/v1/content/state/update`, {
          request: { userId: 'u1', batchId: BATCH, courseId: COURSE },
        });
        expect(res.status).toBe(503);
        expect(res.body.params.errmsg).toMatch(/Kafka|producer/i);
      } finally {
        await kafkaLost.stop();
      }

      // The API takes its port before it connects; a start that fails gives the port back.
      const port = await freePort();
      const noCassandra = loadConfig({
        SYNC_ENV: ctx.settings.env,
        CASSANDRA_CONTACT_POINTS: '127.0.0.1:1',
        API_PORT: String(port),
        LOG_LEVEL: 'silent',
      });
      await expect(
        new EnrolmentSyncService(noCassandra, ctx.log).start({ api: true, processor: false }),
      ).rejects.toMatchObject({
        code: 'SYNC_CASSANDRA_UNAVAILABLE',
      });
      await expect(freePort(port)).resolves.toBe(port);
    } finally {
      await ctx.cleanup();
    }
  });
});

/** Listens on `port` (0: any free one) and lets it go again: the port, free as of now. */
function freePort(port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}
