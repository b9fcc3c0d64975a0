import { confluentProducerClient } from '../../../src/kafka/confluent-producer';
import type { ProducerClient, TransactionalProducer } from '../../../src/kafka/ports';
import { createLogger } from '../../../src/observability/logger';
import { createTestContext, readTopic, type TestContext } from '../../helpers/context';

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
});
