import { randomBytes } from 'node:crypto';
import { Producer } from '@confluentinc/kafka-javascript';
import { javaCompatiblePartitioner } from '../../../src/kafka/client';
import { batchProduceOf, confluentProducerClient } from '../../../src/kafka/confluent-producer';
import type { IdempotentProducer, ProducerClient, TransactionalProducer } from '../../../src/kafka/ports';
import { createLogger } from '../../../src/observability/logger';
import { createTestContext, readTopic, type TestContext } from '../../helpers/context';
import { ensureTopics } from '../../../src/kafka/topics';

/** A record over the small topics' max.message.bytes (2,000) however it is compressed: random bytes. */
const tooLarge = () => randomBytes(10_000);

/**
 * librdkafka's queue is bounded (queue.buffering.max.messages 5,000) so that it cannot hold a
 * whole transaction's records in memory. A record counts against the bound until its delivery
 * report is served: this checks that a transaction larger than the queue still goes through,
 * i.e. that delivered records leave the queue while the transaction is open.
 */
describe('confluent transactional producer, bounded queue', () => {
  let ctx: TestContext;
  let client: ProducerClient;
  let producer: TransactionalProducer | undefined;
  beforeAll(async () => {
    ctx = await createTestContext();
    client = confluentProducerClient(ctx.settings.kafka, createLogger('silent'));
  });
  afterAll(async () => {
    await producer?.close();
    await client.close();
    await ctx.cleanup();
  });

  test('one transaction of 50,000 records (10 × the queue) commits, every record read_committed', async () => {
    const topic = ctx.settings.topics.output;
    producer = client.transactionalProducer({ transactionalId: `queue-${ctx.id}`, transactionTimeoutMs: 60_000 });
    await producer.open();
    await producer.begin();
    const total = 50_000;
    const value = Buffer.alloc(100, 'x');
    // In sends of 1,000, as the sinks send.
    for (let sent = 0; sent < total; sent += 1000) {
      const messages = Array.from({ length: 1000 }, (_, i) => ({ key: `u${sent + i}`, value }));
      await producer.send([{ topic, messages }]);
    }
    await producer.commit();

    const records = await readTopic(ctx.kafka, topic, { until: (r) => r.length >= total, timeoutMs: 60_000 });
    expect(new Set(records.map((r) => r.key)).size).toBe(total);
  });

  // The adapter reads no delivery report: a refused record must fail the commit all the same, or
  // its transaction would commit without it (and must go on doing so if reports are ever turned
  // off with delivery.report.only.error, which docs/benchmarks.md measured).
  test('a record the broker refuses fails the commit; the transaction aborts and the next one commits', async () => {
    const small = `${ctx.settings.topics.output}-small-txn`;
    const topic = `${ctx.settings.topics.output}-ok-txn`;
    await ensureTopics(ctx.admin, [
      { topic: small, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] },
      { topic, numPartitions: 1 },
    ]);
    const txn = client.transactionalProducer({ transactionalId: `refused-${ctx.id}`, transactionTimeoutMs: 60_000 });
    try {
      await txn.open();
      await txn.begin();
      await txn.send([{ topic, messages: [{ key: 'with-refused', value: 'lost' }] }]);
      await txn.send([{ topic: small, messages: [{ key: 'big', value: tooLarge() }] }]);
      await expect(txn.commit()).rejects.toMatchObject({ code: expect.stringMatching(/^SYNC_/) });
      await txn.abort();
      await txn.begin();
      await txn.send([{ topic, messages: [{ key: 'after', value: 'fine' }] }]);
      await txn.commit();
      const records = await readTopic(ctx.kafka, topic, { until: (r) => r.length >= 1, timeoutMs: 30_000 });
      expect(records.map((r) => r.key)).toEqual(['after']);
    } finally {
      await txn.close();
      await ctx.admin.deleteTopics({ topics: [small, topic] }).catch(() => undefined);
    }
  });
});

/**
 * At-least-once relies on send resolving only once every record of it is acknowledged (the
 * checkpoint and the input offset are written after it), on enqueued records being acknowledged
 * once a flush resolves, and on a record the broker refused failing the call that waits for it. The adapter learns neither from a report per record (too dear, see
 * ConfluentIdempotentProducer) but from flushes and failure-only reports.
 */
describe('confluent idempotent producer (at-least-once)', () => {
  let ctx: TestContext;
  let client: ProducerClient;
  let producer: IdempotentProducer | undefined;
  beforeAll(async () => {
    ctx = await createTestContext();
    client = confluentProducerClient(ctx.settings.kafka, createLogger('silent'));
    producer = client.idempotentProducer();
    await producer.open();
  });
  afterAll(async () => {
    await producer?.close();
    await client.close();
    await ctx.cleanup();
  });

  async function highWatermarks(topic: string): Promise<number> {
    const offsets = await ctx.admin.fetchTopicOffsets(topic);
    return offsets.reduce((n, p) => n + Number(p.high), 0);
  }

  test('sends overlapping as the sink overlaps them resolve only once their records are on the broker', async () => {
    const topic = `${ctx.settings.topics.output}-idem`;
    await ensureTopics(ctx.admin, [{ topic, numPartitions: 4 }]);
    try {
      const value = Buffer.alloc(400, 'y');
      let resolved = 0;
      const checks: Array<Promise<void>> = [];
      const inFlight: Array<Promise<void>> = [];
      for (let sent = 0; sent < 30_000; sent += 1000) {
        const messages = Array.from({ length: 1000 }, (_, i) => ({ key: `u${sent + i}`, value }));
        inFlight.push(
          (producer as IdempotentProducer).send([{ topic, messages }]).then(() => {
            resolved += messages.length;
            // Taken at once: everything resolved so far must already count in the offsets.
            const atLeast = resolved;
            checks.push(highWatermarks(topic).then((high) => void expect(high).toBeGreaterThanOrEqual(atLeast)));
          }),
        );
        if (inFlight.length >= 4) await inFlight.shift();
      }
      await Promise.all(inFlight);
      await Promise.all(checks);
      expect(resolved).toBe(30_000);
      expect(await highWatermarks(topic)).toBe(30_000);
    } finally {
      await ctx.admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    }
  });

  test('records only enqueued are all on the broker once flush resolves', async () => {
    const topic = `${ctx.settings.topics.output}-enq`;
    await ensureTopics(ctx.admin, [{ topic, numPartitions: 4 }]);
    try {
      const idempotent = producer as IdempotentProducer;
      const value = Buffer.alloc(400, 'e');
      for (let sent = 0; sent < 30_000; sent += 1000) {
        const messages = Array.from({ length: 1000 }, (_, i) => ({ key: `e${sent + i}`, value }));
        await idempotent.enqueue([{ topic, messages }]);
      }
      await idempotent.flush();
      expect(await highWatermarks(topic)).toBe(30_000);
    } finally {
      await ctx.admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    }
  });

  test('a refused record that was only enqueued fails the next flush, and only that one', async () => {
    const small = `${ctx.settings.topics.output}-small-enq`;
    await ensureTopics(ctx.admin, [
      { topic: small, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] },
    ]);
    try {
      const idempotent = producer as IdempotentProducer;
      await idempotent.enqueue([{ topic: small, messages: [{ key: 'big', value: tooLarge() }] }]);
      // Long enough for the broker's refusal to be reported while nothing waits.
      await new Promise((r) => setTimeout(r, 3000));
      await expect(idempotent.flush()).rejects.toMatchObject({ code: expect.stringMatching(/^SYNC_/) });
      await idempotent.flush();
    } finally {
      await ctx.admin.deleteTopics({ topics: [small] }).catch(() => undefined);
    }
  });

  test('a record the broker refuses fails its send; the producer goes on sending', async () => {
    const small = `${ctx.settings.topics.output}-small`;
    const topic = `${ctx.settings.topics.output}-ok`;
    await ensureTopics(ctx.admin, [
      { topic: small, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] },
      { topic, numPartitions: 1 },
    ]);
    try {
      const idempotent = producer as IdempotentProducer;
      const refused = idempotent.send([{ topic: small, messages: [{ key: 'big', value: tooLarge() }] }]);
      await expect(refused).rejects.toMatchObject({ code: expect.stringMatching(/^SYNC_/) });
      await idempotent.send([{ topic, messages: [{ key: 'after', value: 'fine' }] }]);
      expect(await highWatermarks(topic)).toBe(1);
    } finally {
      await ctx.admin.deleteTopics({ topics: [small, topic] }).catch(() => undefined);
    }
  });
});

/**
 * Records with only a key and a value (every sync event) reach librdkafka through the patched
 * binding's produceBatch, a thousand per native call; the rest go one by one. Either way each must
 * land where produce() put it: in the Java client's partition for its key, in the order sent.
 */
describe('confluent producer, records in native batches', () => {
  let ctx: TestContext;
  let client: ProducerClient;
  beforeAll(async () => {
    ctx = await createTestContext();
    client = confluentProducerClient(ctx.settings.kafka, createLogger('silent'));
  });
  afterAll(async () => {
    await client.close();
    await ctx.cleanup();
  });

  /** A binding producer, never connected: what the checks of the binding itself need. */
  const bindingProducer = () => new Producer({ 'bootstrap.servers': ctx.settings.kafka.brokers.join(',') });

  // make install rebuilds the binding after patch-package; without it every record would go
  // one by one, correct but at the old cost, and nothing else would say so.
  test('the installed binding is the patched build: its producer has produceBatch', () => {
    expect(batchProduceOf(bindingProducer())).toBeDefined();
  });

  /** The native producer's prototype, where the patch put produceBatch. */
  function nativePrototype(): Record<string, unknown> {
    const native = (bindingProducer() as unknown as { _client: object })._client;
    return Object.getPrototypeOf(native) as Record<string, unknown>;
  }

  // The second case is a prebuilt or unpatched binding: the adapter must then go record by record.
  test.each([
    ['in native batches', 'batched', true],
    ['one by one, on a binding without produceBatch', 'single', false],
  ])('records sent %s keep their order, partition, headers and timestamp', async (_, name, batched) => {
    const prototype = nativePrototype();
    const produceBatch = prototype.produceBatch;
    if (!batched) delete prototype.produceBatch;
    const spread = `${ctx.settings.topics.output}-${name}4`;
    const ordered = `${ctx.settings.topics.output}-${name}1`;
    await ensureTopics(ctx.admin, [
      { topic: spread, numPartitions: 4 },
      { topic: ordered, numPartitions: 1 },
    ]);
    const txn = client.transactionalProducer({ transactionalId: `${name}-${ctx.id}`, transactionTimeoutMs: 60_000 });
    try {
      // 7,000 keyed records (more than the queue's 5,000, so a full queue is met mid-batch) and a
      // few without a key; then, on one partition, batched runs broken by records that go alone.
      const keyed = Array.from({ length: 7000 }, (_, i) => ({ key: `user-${i}`, value: `v${i}` }));
      const keyless = Array.from({ length: 5 }, (_, i) => ({ key: null, value: `keyless-${i}` }));
      const run = (from: number, n: number) =>
        Array.from({ length: n }, (_, i) => ({ key: `o${from + i}`, value: Buffer.from(`${from + i}`) }));
      const sequence = [
        ...run(0, 1500),
        { key: 'o1500', value: 'with-header', headers: { origin: 'test' } },
        ...run(1501, 1500),
        { key: 'o3001', value: 'with-timestamp', timestamp: '1700000000000' },
        { key: 'o3002', value: 'with-partition', partition: 0 },
        { key: 'o3003', value: null },
        ...run(3004, 10),
        // An empty key is a key, and an empty value a value: librdkafka takes a null pointer, which
        // an empty Buffer may have, for none (a random partition, a tombstone).
        { key: '', value: 'with-empty-key' },
        ...run(3015, 10),
        { key: 'o3025', value: '' },
        { key: 'o3026', value: Buffer.alloc(0) },
        { key: Buffer.alloc(0), value: 'with-empty-key-buffer' },
        ...run(3028, 10),
      ];
      await txn.open();
      await txn.begin();
      await txn.send([
        { topic: spread, messages: [...keyed, ...keyless] },
        { topic: ordered, messages: sequence },
      ]);
      await txn.commit();

      const partitioner = javaCompatiblePartitioner();
      const partitionMetadata = [0, 1, 2, 3].map((partitionId) => ({
        partitionId,
        leader: 1,
        replicas: [1],
        isr: [1],
        partitionErrorCode: 0,
      }));
      const spreadRecords = await readTopic(ctx.kafka, spread, { until: (r) => r.length >= 7005, timeoutMs: 60_000 });
      expect(spreadRecords).toHaveLength(7005);
      for (const record of spreadRecords.filter((r) => r.key !== null)) {
        const expected = partitioner({ topic: spread, partitionMetadata, message: { key: record.key, value: null } });
        expect({ key: record.key, partition: record.partition }).toEqual({ key: record.key, partition: expected });
      }
      expect(new Set(spreadRecords.map((r) => r.key ?? r.value.toString())).size).toBe(7005);

      const orderedRecords = await readTopic(ctx.kafka, ordered, {
        until: (r) => r.length >= sequence.length,
        timeoutMs: 60_000,
      });
      expect(orderedRecords.map((r) => r.key)).toEqual(sequence.map((r) => (r.key === null ? null : String(r.key))));
      expect(orderedRecords[1500]?.headers.origin?.toString()).toBe('test');
      expect(orderedRecords[3001]?.timestamp).toBe(1_700_000_000_000);
      expect(orderedRecords[3003]).toMatchObject({ tombstone: true });
      expect(orderedRecords[3010]?.value.toString()).toBe('3010');
      for (const empty of [orderedRecords[3025], orderedRecords[3026]]) {
        expect({ tombstone: empty?.tombstone, length: empty?.value.length }).toEqual({ tombstone: false, length: 0 });
      }
      expect(orderedRecords[3027]?.value.toString()).toBe('with-empty-key-buffer');
    } finally {
      prototype.produceBatch = produceBatch;
      await txn.close();
      await ctx.admin.deleteTopics({ topics: [spread, ordered] }).catch(() => undefined);
    }
  });

  test('a record librdkafka refuses in a batch fails the send; the producer goes on sending', async () => {
    const topic = `${ctx.settings.topics.output}-batch-refused`;
    await ensureTopics(ctx.admin, [{ topic, numPartitions: 1 }]);
    const idempotent = client.idempotentProducer();
    try {
      await idempotent.open();
      // Over librdkafka's message.max.bytes (1,000,000): refused when queued, not by the broker.
      const huge = { key: 'huge', value: randomBytes(1_500_000) };
      const refused = idempotent.send([
        { topic, messages: [{ key: 'a', value: 'x' }, huge, { key: 'b', value: 'y' }] },
      ]);
      await expect(refused).rejects.toMatchObject({ code: expect.stringMatching(/^SYNC_/) });
      await idempotent.send([{ topic, messages: [{ key: 'after', value: 'fine' }] }]);
      const records = await readTopic(ctx.kafka, topic, { until: (r) => r.some((x) => x.key === 'after') });
      expect(records.map((r) => r.key)).not.toContain('huge');
      expect(records.map((r) => r.key)).toContain('after');
    } finally {
      await idempotent.close();
      await ctx.admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    }
  });
});
