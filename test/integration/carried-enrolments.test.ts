import { randomUUID } from 'node:crypto';
import { COMPATIBILITY, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { Producer } from 'kafkajs';
import { CARRIED_ENROLMENTS_MAX_USERS } from '../../src/api/app';
import type { EnrolmentSyncService } from '../../src/service';
import { DEAD_LETTER_HEADERS } from '../../src/streams/dead-letter';
import { loadAvroSchema, TRIGGER_SCHEMA_FILE } from '../../src/schemas';
import { createTestContext, headerText, readTopic, type ConsumedRecord, type TestContext } from '../helpers/context';
import { enrolment, patch, seed, startService } from '../helpers/service';

const COURSE = 'do_course_carry';
const BATCH = 'batch_carry';
/** One user more than a trigger carries rows for. */
const LONG_LIST = Array.from({ length: CARRIED_ENROLMENTS_MAX_USERS + 1 }, (_, i) => `long-${i}`);

/** Requests the processor process has sent to Cassandra so far (the driver's request tracker). */
async function cassandraRequests(service: EnrolmentSyncService): Promise<number> {
  const metric = await service.metrics.registry.getSingleMetric('sync_cassandra_requests_total')?.get();
  return (metric?.values ?? []).reduce((n, v) => n + v.value, 0);
}

/** The trigger schema before `enrolments`, as upstream services registered it. */
function oldTriggerSchema(): string {
  const schema = loadAvroSchema(TRIGGER_SCHEMA_FILE);
  return JSON.stringify({ ...schema, fields: schema.fields.filter((f) => f.name !== 'enrolments') });
}

async function registryCall(url: string, method: string, body?: unknown): Promise<any> {
  const res = await fetch(url, {
    method,
    headers: { 'Content-Type': 'application/vnd.schemaregistry.v1+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res.json();
}

describe('API triggers carry the enrolments the API read; the processor does not read them again', () => {
  let ctx: TestContext;
  let api: EnrolmentSyncService;
  let processor: EnrolmentSyncService;
  let producer: Producer;

  beforeAll(async () => {
    ctx = await createTestContext();
    await seed(ctx, [
      enrolment('u1', COURSE, BATCH),
      enrolment('u2', COURSE, BATCH, { status: 2 }),
      enrolment('u3', COURSE, BATCH),
      enrolment('u4', COURSE, BATCH),
      enrolment('u5', COURSE, BATCH),
      enrolment('off', COURSE, BATCH, { active: false }),
      ...LONG_LIST.map((u) => enrolment(u, COURSE, BATCH)),
    ]);
    // Two processes' worth, so the processor's Cassandra requests are counted alone.
    processor = await startService(ctx, { api: false, processor: true });
    api = await startService(ctx, { api: true, processor: false });
    producer = ctx.kafka.producer();
    await producer.connect();
  });
  afterAll(async () => {
    await producer?.disconnect();
    await api?.stop();
    await processor?.stop();
    await ctx.cleanup();
  });

  const send = (value: Buffer | string) =>
    producer.send({ topic: ctx.settings.topics.trigger, acks: -1, messages: [{ key: randomUUID(), value }] });
  const output = (until: (r: ConsumedRecord[]) => boolean) =>
    readTopic(ctx.kafka, ctx.settings.topics.output, { until, settleMs: 500 });
  const of = (records: ConsumedRecord[], user: string) => records.filter((r) => r.key === user);
  /** The trigger the API published for `triggerId`, as JSON. */
  const publishedTrigger = async (triggerId: string): Promise<Record<string, unknown>> => {
    const mentions = (x: ConsumedRecord) => x.value.toString().includes(triggerId);
    const triggers = await readTopic(ctx.kafka, ctx.settings.topics.trigger, {
      until: (r) => r.some(mentions),
      settleMs: 0,
    });
    return JSON.parse(triggers.find(mentions)!.value.toString()) as Record<string, unknown>;
  };

  test("an API request's events are byte for byte those of the same trigger without them, and only the plain one reads Cassandra", async () => {
    const before = await cassandraRequests(processor);
    const res = await patch(`${api.url}/v1/content/state/update`, {
      request: { userId: ['u1', 'nobody', 'u2', 'off'], batchId: BATCH, courseId: COURSE },
    });
    expect(res.status).toBe(200);
    expect(res.body.result).toMatchObject({ users: 2, notEnrolled: ['nobody', 'off'] });
    const triggerId = res.body.result.triggerId as string;

    const first = await output((r) => of(r, 'u1').length >= 1 && of(r, 'u2').length >= 1);
    expect(of(first, 'u1')).toHaveLength(1);
    expect(of(first, 'u2')).toHaveLength(1);
    expect(await cassandraRequests(processor)).toBe(before);

    // What the API published: its users, and the rows it read for them.
    const published = await publishedTrigger(triggerId);
    expect(published.userIds).toEqual(['u1', 'u2']);
    expect(published.enrolments).toEqual({
      readAt: expect.any(Number),
      rows: [
        { userId: 'u1', active: true, status: 1 },
        { userId: 'u2', active: true, status: 2 },
      ],
    });

    // The same trigger as an upstream service would write it, without the rows: read, same bytes.
    const { enrolments: _carried, ...plain } = published;
    await send(JSON.stringify(plain));
    const both = await output((r) => of(r, 'u1').length >= 2 && of(r, 'u2').length >= 2);
    for (const user of ['u1', 'u2']) {
      const [a, b] = of(both, user);
      expect(of(both, user)).toHaveLength(2);
      expect(b!.value.equals(a!.value)).toBe(true);
    }
    expect(await cassandraRequests(processor)).toBeGreaterThanOrEqual(before + 2);

    // The status folds the same counts either way: the API's users, the processor's events.
    const status = await readTopic(ctx.kafka, ctx.settings.topics.status, {
      until: (r) => r.some((x) => x.key === `${triggerId}|trigger`),
      settleMs: 0,
    });
    const trigger = status.filter((x) => x.key === `${triggerId}|trigger`).map((x) => JSON.parse(x.value.toString()));
    expect(trigger.length).toBeGreaterThanOrEqual(2);
    for (const part of trigger) expect(part).toMatchObject({ state: 'done', produced: 2, rowsRead: 2 });
  });

  test('a carried row that lies about its user is dead-lettered naming the field; the next trigger still expands', async () => {
    await send(
      JSON.stringify({
        triggerId: 'liar',
        courseId: COURSE,
        batchId: BATCH,
        userIds: ['u3'],
        enrolments: { readAt: Date.now(), rows: [{ userId: 'somebody-else', active: true, status: 1 }] },
      }),
    );
    await send(JSON.stringify({ triggerId: 'after-liar', courseId: COURSE, batchId: BATCH, userIds: ['u3'] }));
    const dead = await readTopic(ctx.kafka, ctx.settings.topics.deadLetter, {
      until: (r) => r.some((x) => x.value.toString().includes('"liar"')),
      settleMs: 0,
    });
    const letter = dead.find((x) => x.value.toString().includes('"liar"'))!;
    expect(headerText(letter.headers, DEAD_LETTER_HEADERS.code)).toBe('SYNC_BAD_TRIGGER');
    expect(headerText(letter.headers, DEAD_LETTER_HEADERS.field)).toBe('enrolments.rows[0].userId');
    expect(headerText(letter.headers, DEAD_LETTER_HEADERS.message)).toMatch(/one of userIds, got 'somebody-else'/);
    const out = await output((r) => of(r, 'u3').length >= 1);
    expect(of(out, 'u3')).toHaveLength(1);
  });

  test('Avro: the registry accepts the new schema as FULL-compatible; an old-schema trigger still reads, a carrying one does not', async () => {
    const subject = `${ctx.settings.topics.trigger}-value`;
    const registry = ctx.settings.registry.url;
    const old = await ctx.registry.register({ type: SchemaType.AVRO, schema: oldTriggerSchema() }, { subject });
    try {
      await registryCall(`${registry}/config/${subject}`, 'PUT', { compatibility: 'FULL' });
      const check = (schema: unknown) =>
        registryCall(`${registry}/compatibility/subjects/${subject}/versions/latest`, 'POST', {
          schema: JSON.stringify(schema),
        });
      const current = loadAvroSchema(TRIGGER_SCHEMA_FILE);
      expect(await check(current)).toEqual({ is_compatible: true });
      // The check can fail: the same field without its default is refused.
      const withoutDefault = {
        ...current,
        fields: current.fields.map((f) => (f.name === 'enrolments' ? { name: f.name, type: f.type } : f)),
      };
      expect(await check(withoutDefault)).toEqual({ is_compatible: false });
      const latest = await ctx.registry.register(
        { type: SchemaType.AVRO, schema: JSON.stringify(current) },
        { subject, compatibility: COMPATIBILITY.FULL },
      );
      expect(latest.id).not.toBe(old.id);

      const fields = {
        courseId: COURSE,
        batchId: BATCH,
        requestedBy: 'upstream-svc',
        requestedAt: Date.now(),
        source: 'upstream',
        includeInactive: null,
        includeCompleted: null,
      };
      let before = await cassandraRequests(processor);
      await send(await ctx.registry.encode(old.id, { ...fields, triggerId: 'old-avro', userIds: ['u4'] }));
      expect(of(await output((r) => of(r, 'u4').length >= 1), 'u4')).toHaveLength(1);
      expect(await cassandraRequests(processor)).toBeGreaterThan(before);

      before = await cassandraRequests(processor);
      const carrying = {
        ...fields,
        triggerId: 'new-avro',
        userIds: ['u5'],
        enrolments: { readAt: Date.now(), rows: [{ userId: 'u5', active: true, status: 1 }] },
      };
      await send(await ctx.registry.encode(latest.id, carrying));
      expect(of(await output((r) => of(r, 'u5').length >= 1), 'u5')).toHaveLength(1);
      expect(await cassandraRequests(processor)).toBe(before);
    } finally {
      await registryCall(`${registry}/subjects/${subject}`, 'DELETE').catch(() => undefined);
    }
  });
  test('a longer list than the API carries rows for publishes its users alone, and the processor reads them', async () => {
    const before = await cassandraRequests(processor);
    const res = await patch(`${api.url}/v1/content/state/update`, {
      request: { userId: LONG_LIST, batchId: BATCH, courseId: COURSE },
    });
    expect(res.status).toBe(200);
    expect(res.body.result).toMatchObject({ users: LONG_LIST.length, notEnrolled: [] });
    const triggerId = res.body.result.triggerId as string;
    const published = await publishedTrigger(triggerId);
    expect(published.enrolments ?? null).toBeNull();
    const events = await output((r) => LONG_LIST.every((u) => of(r, u).length >= 1));
    for (const user of LONG_LIST) expect(of(events, user)).toHaveLength(1);
    expect(await cassandraRequests(processor)).toBeGreaterThan(before);
  });
});
