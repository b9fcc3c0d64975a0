import { randomBytes } from 'node:crypto';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { loadConfig } from '../../../src/config';
import { createProducerClient } from '../../../src/kafka/producers';
import type { KafkaClientName, KafkaCompression } from '../../../src/kafka/ports';
import { createLogger } from '../../../src/observability/logger';
import { createTestContext, readTopic, type TestContext } from '../../helpers/context';
import { ensureTopics } from '../../../src/kafka/topics';

/**
 * KAFKA_COMPRESSION with each client: the batch the broker stores is compressed (a topic whose
 * max.message.bytes only a compressed batch fits takes it, and refuses it uncompressed), and the
 * records read back the same through kafkajs (our LZ4 decoder) and through librdkafka's consumer
 * (the reference decoder, which checks the frame header our kafkajs encoder writes).
 */
const RECORDS = 200;
/** 200 records of ~500 B: ~100 KB as one batch uncompressed, a few KB compressed. */
const value = (i: number) => Buffer.from(JSON.stringify({ i, pad: 'enrolment-sync '.repeat(32) }));
const TOPIC_LIMIT = 20_000;

async function readWithLibrdkafka(brokers: string[], topic: string, expected: number): Promise<Map<string, Buffer>> {
  const consumer = new KafkaJS.Kafka({}).consumer({
    'bootstrap.servers': brokers.join(','),
    'group.id': `lz4-reader-${randomBytes(4).toString('hex')}`,
    'auto.offset.reset': 'earliest',
    'isolation.level': 'read_committed',
    log_level: 0,
  });
  const records = new Map<string, Buffer>();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`librdkafka read ${records.size} of ${expected}`)), 30_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          records.set(String(message.key), message.value as Buffer);
          if (records.size >= expected) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return records;
}

describe.each<KafkaClientName>(['kafkajs', 'confluent'])('KAFKA_COMPRESSION with KAFKA_CLIENT=%s', (client) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  async function produceOneBatch(compression: KafkaCompression, topic: string): Promise<void> {
    const settings = loadConfig({ ...process.env, KAFKA_CLIENT: client, KAFKA_COMPRESSION: compression });
    const producers = await createProducerClient(settings.kafka, ctx.kafka, createLogger('silent'));
    const producer = producers.transactionalProducer({
      transactionalId: `compression-${compression}-${ctx.id}`,
      transactionTimeoutMs: 30_000,
    });
    try {
      await producer.open();
      await producer.begin();
      const messages = Array.from({ length: RECORDS }, (_, i) => ({ key: `k${i}`, value: value(i) }));
      await producer.send([{ topic, messages }]);
      await producer.commit();
    } finally {
      await producer.close();
      await producers.close();
    }
  }

  async function limitedTopic(name: string): Promise<string> {
    const topic = `${ctx.settings.topics.output}-${name}`;
    await ensureTopics(ctx.admin, [
      { topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(TOPIC_LIMIT) }] },
    ]);
    return topic;
  }

  test.each<KafkaCompression>(['lz4', 'gzip'])(
    '%s: the batch goes in compressed and reads back whole',
    async (compression) => {
      const topic = await limitedTopic(compression);
      await produceOneBatch(compression, topic);

      const viaKafkajs = await readTopic(ctx.kafka, topic, { until: (r) => r.length >= RECORDS });
      expect(viaKafkajs.map((r) => r.value?.toString())).toEqual(
        Array.from({ length: RECORDS }, (_, i) => value(i).toString()),
      );
      const viaLibrdkafka = await readWithLibrdkafka(ctx.settings.kafka.brokers, topic, RECORDS);
      for (let i = 0; i < RECORDS; i++) expect(viaLibrdkafka.get(`k${i}`)?.equals(value(i))).toBe(true);
    },
  );

  test('none: the same batch is too large for the topic', async () => {
    const topic = await limitedTopic('none');
    await expect(produceOneBatch('none', topic)).rejects.toThrow(/too large|MESSAGE_TOO_LARGE|larger than/i);
  });
});
