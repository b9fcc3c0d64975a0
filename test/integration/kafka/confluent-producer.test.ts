import { randomBytes } from 'node:crypto';
import { confluentProducerClient } from '../../../src/kafka/confluent-producer';
import type { IdempotentProducer, ProducerClient, TransactionalProducer } from '../../../src/kafka/ports';
import { createLogger } from '../../../src/observability/logger';
import { createTestContext, readTopic, type TestContext } from '../../helpers/context';

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
    await ctx.admin.createTopics({
      topics: [
        { topic: small, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] },
        { topic, numPartitions: 1 },
      ],
      waitForLeaders: true,
    });
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
    await ctx.admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
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
    await ctx.admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
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
    await ctx.admin.createTopics({
      topics: [{ topic: small, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] }],
      waitForLeaders: true,
    });
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
    await ctx.admin.createTopics({
      topics: [
        { topic: small, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] },
        { topic, numPartitions: 1 },
      ],
      waitForLeaders: true,
    });
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
