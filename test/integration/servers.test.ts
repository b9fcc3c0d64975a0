import { randomBytes } from 'node:crypto';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { buildSyncEvent } from '../../processors/enrolment-sync/sync-event';
import { loadAvroSchema, SYNC_EVENT_SCHEMA_FILE } from '../../src/schemas';
import { createTestContext, readTopic, type TestContext } from '../helpers/context';

/** The real servers are up and set up the way the product needs them. */
describe('local servers', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  test('Kafka: a transaction with sendOffsets commits; an aborted one stays invisible to read_committed', async () => {
    const { kafka, settings } = ctx;
    const input = settings.topics.trigger;
    const output = settings.topics.output;
    const groupId = `txn-${ctx.id}`;

    // Something to "consume", so that sendOffsets has an offset to commit.
    const plain = kafka.producer();
    await plain.connect();
    await plain.send({ topic: input, messages: [{ key: 'k', value: 'input-1' }] });
    await plain.disconnect();

    const producer = kafka.producer({ transactionalId: `txn-${ctx.id}`, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const committed = await producer.transaction();
    await committed.send({
      topic: output,
      messages: [
        { key: 'a', value: 'committed-1' },
        { key: 'b', value: 'committed-2' },
      ],
    });
    await committed.sendOffsets({
      consumerGroupId: groupId,
      topics: [{ topic: input, partitions: [{ partition: 0, offset: '1' }] }],
    });
    await committed.commit();

    const aborted = await producer.transaction();
    await aborted.send({ topic: output, messages: [{ key: 'c', value: 'aborted-1' }] });
    await aborted.abort();

    const after = await producer.transaction();
    await after.send({ topic: output, messages: [{ key: 'd', value: 'committed-3' }] });
    await after.commit();
    await producer.disconnect();

    const records = await readTopic(kafka, output, { until: (r) => r.length >= 3, settleMs: 1000 });
    expect(records.map((r) => r.value.toString()).sort()).toEqual(['committed-1', 'committed-2', 'committed-3']);

    const offsets = await ctx.admin.fetchOffsets({ groupId, topics: [input] });
    const partition0 = offsets[0]?.partitions.find((p) => p.partition === 0);
    expect(partition0?.offset).toBe('1');
  });

  test('Cassandra: a user_enrolments row written is read back by its primary key', async () => {
    const { cassandra, settings } = ctx;
    const ks = settings.cassandra.keyspace;
    const userId = `user-${randomBytes(4).toString('hex')}`;
    await cassandra.execute(
      `INSERT INTO ${ks}.user_enrolments (userid, courseid, batchid, active, status, contentstatus, certificates) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [userId, 'do_course', 'batch_1', true, 1, { do_1: 2 }, [{ id: 'cert-1' }]],
      { prepare: true },
    );
    const rs = await cassandra.execute(
      `SELECT userid, active, status, contentstatus, certificates FROM ${ks}.user_enrolments WHERE userid = ? AND courseid = ? AND batchid = ?`,
      [userId, 'do_course', 'batch_1'],
      { prepare: true },
    );
    const row = rs.first();
    expect(row.userid).toBe(userId);
    expect(row.active).toBe(true);
    expect(row.status).toBe(1);
    expect(row.contentstatus).toEqual({ do_1: 2 });
    expect(row.certificates).toEqual([{ id: 'cert-1' }]);
  });

  test('Registry: the sync event schema registers and an event round-trips through Confluent Avro', async () => {
    const { registry, settings } = ctx;
    const schema = JSON.stringify(loadAvroSchema(SYNC_EVENT_SCHEMA_FILE));
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema },
      { subject: `${settings.topics.output}-value` },
    );
    // Registering the same schema again is idempotent.
    const again = await registry.register(
      { type: SchemaType.AVRO, schema },
      { subject: `${settings.topics.output}-value` },
    );
    expect(again.id).toBe(id);

    const event = buildSyncEvent(
      'do_course',
      'batch_1',
      'user "ü" \\ 1',
      1614838059898,
      'c7ba0267-d1fe-4443-a819-b0e8c06a44c2',
    );
    const encoded = await registry.encode(id, event);
    expect(encoded[0]).toBe(0);
    expect(encoded.readUInt32BE(1)).toBe(id);
    expect(await registry.decode(encoded)).toEqual(event);
  });
});
