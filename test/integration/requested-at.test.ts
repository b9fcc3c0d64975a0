import { SchemaType } from '@kafkajs/confluent-schema-registry';
import type { Producer } from 'kafkajs';
import { loadAvroSchema, TRIGGER_SCHEMA_FILE } from '../../src/schemas';
import type { EnrolmentSyncService } from '../../src/service';
import { DEAD_LETTER_HEADERS } from '../../src/streams/dead-letter';
import { createTestContext, headerText, readTopic, type TestContext } from '../helpers/context';
import { enrolment, seed, startService } from '../helpers/service';

/**
 * Upstream services write requestedAt as epoch ms, as a string of digits, as ISO-8601 or in
 * Sunbird's `yyyy-MM-dd HH:mm:ss:SSSZ`: each trigger expands, and its events' ets is that instant.
 * Only a value that is no time at all is dead-lettered, naming the field.
 */
const COURSE = 'do_course_at';
const BATCH = 'batch_at';
const AT = 1614837484382; // 2021-03-04T05:58:04.382Z

const forms: Array<[user: string, requestedAt: unknown, ets: number]> = [
  ['u-number', AT, AT],
  ['u-digits', String(AT), AT],
  ['u-iso-utc', '2021-03-04T05:58:04.382Z', AT],
  ['u-iso-offset', '2021-03-04T11:28:04.382+05:30', AT],
  ['u-iso-no-zone', '2021-03-04T05:58:04.382', AT],
  ['u-sunbird', '2021-03-04 05:58:04:382+0000', AT],
  ['u-sunbird-ist', '2021-03-04 11:28:04:382+0530', AT],
  ['u-date', '2021-03-04', Date.UTC(2021, 2, 4)],
];

describe('processor: requestedAt in every form upstream services write it', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;
  let producer: Producer;

  beforeAll(async () => {
    ctx = await createTestContext();
    await seed(ctx, [...forms.map(([user]) => enrolment(user, COURSE, BATCH)), enrolment('u-avro', COURSE, BATCH)]);
    service = await startService(ctx, { api: false, processor: true });
    producer = ctx.kafka.producer();
    await producer.connect();
  });

  afterAll(async () => {
    await producer?.disconnect();
    await service?.stop();
    await ctx.cleanup();
  });

  test('JSON triggers with each form and an Avro trigger (a long) expand, ets being that instant; garbage is dead-lettered naming requestedAt', async () => {
    const { trigger, output, deadLetter } = ctx.settings.topics;
    const { id } = await ctx.registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(loadAvroSchema(TRIGGER_SCHEMA_FILE)) },
      { subject: `${trigger}-value` },
    );
    const avro = await ctx.registry.encode(id, {
      triggerId: 'at-avro',
      courseId: COURSE,
      batchId: BATCH,
      userIds: ['u-avro'],
      requestedBy: 'svc',
      requestedAt: AT,
      source: 'upstream',
      includeInactive: null,
      includeCompleted: null,
    });
    await producer.send({
      topic: trigger,
      acks: -1,
      messages: [
        ...forms.map(([user, requestedAt]) => ({
          key: user,
          value: JSON.stringify({
            triggerId: `at-${user}`,
            courseId: COURSE,
            batchId: BATCH,
            userIds: [user],
            requestedAt,
          }),
        })),
        { key: 'u-avro', value: avro },
        {
          key: 'garbage',
          value: JSON.stringify({ courseId: COURSE, batchId: BATCH, userIds: ['u-number'], requestedAt: '04/03/2021' }),
        },
      ],
    });

    const wanted = [...forms.map(([user]) => user), 'u-avro'];
    const out = await readTopic(ctx.kafka, output, {
      until: (r) => wanted.every((u) => r.some((x) => x.key === u)),
      settleMs: 1000,
    });
    for (const [user, requestedAt, ets] of forms) {
      const events = out.filter((r) => r.key === user).map((r) => JSON.parse(r.value.toString()));
      expect({ user, requestedAt, count: events.length, ets: events[0]?.ets }).toEqual({
        user,
        requestedAt,
        count: 1,
        ets,
      });
      expect(events[0].mid).toMatch(new RegExp(`^LP\\.${ets}\\.`));
    }
    const avroEvents = out.filter((r) => r.key === 'u-avro').map((r) => JSON.parse(r.value.toString()));
    expect(avroEvents).toHaveLength(1);
    expect(avroEvents[0].ets).toBe(AT);
    // The garbage trigger named u-number too; it produced nothing.
    expect(out.filter((r) => r.key === 'u-number')).toHaveLength(1);

    const dead = await readTopic(ctx.kafka, deadLetter, { until: (r) => r.length >= 1, settleMs: 500 });
    expect(dead).toHaveLength(1);
    expect(dead[0]!.key).toBe('garbage');
    expect(headerText(dead[0]!.headers, DEAD_LETTER_HEADERS.code)).toBe('SYNC_BAD_TRIGGER');
    expect(headerText(dead[0]!.headers, DEAD_LETTER_HEADERS.field)).toBe('requestedAt');
    expect(headerText(dead[0]!.headers, DEAD_LETTER_HEADERS.message)).toMatch(/requestedAt .*got '04\/03\/2021'/);
  });
});
