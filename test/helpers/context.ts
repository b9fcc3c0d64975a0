import { randomBytes } from 'node:crypto';
import type { Client } from 'cassandra-driver';
import { Kafka, logLevel, type Admin, type IHeaders, type KafkaMessage } from 'kafkajs';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { createCassandra } from '../../src/cassandra/client';
import { loadConfig, type Settings } from '../../src/config';
import { createRegistry } from '../../src/kafka/registry';
import { kafkaSecurity } from '../../src/kafka/client';
import { ensureTopics, topicSpecs } from '../../src/kafka/topics';
import { applyCassandraSchema, DEFAULT_REPLICATION } from '../../src/migrate';
import { createLogger, type Logger } from '../../src/observability/logger';
import { sleep } from '../../src/util/async';

/**
 * A test's own world on the real servers: a fresh keyspace `test_<hex>` with the product's
 * schema, its own topics and consumer group. Files run in parallel without stepping on each other.
 */
export interface TestContext {
  id: string;
  settings: Settings;
  log: Logger;
  kafka: Kafka;
  admin: Admin;
  cassandra: Client;
  registry: SchemaRegistry;
  cleanup(): Promise<void>;
}

export async function createTestContext(env: Record<string, string> = {}): Promise<TestContext> {
  const id = randomBytes(5).toString('hex');
  const settings = loadConfig({
    SYNC_ENV: `test-${id}`,
    CASSANDRA_KEYSPACE: `test_${id}`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    SYNC_RETRY_INITIAL_MS: '20',
    SYNC_RETRY_MAX_MS: '200',
    SYNC_RETRIES: '2',
    TOPIC_PARTITIONS: '2',
    // `make test-confluent` runs the processor suites again with the librdkafka producer.
    ...(process.env.KAFKA_CLIENT !== undefined && { KAFKA_CLIENT: process.env.KAFKA_CLIENT }),
    ...env,
  });
  const log = createLogger(settings.logLevel);
  const kafka = new Kafka({
    clientId: `test-${id}`,
    brokers: settings.kafka.brokers,
    logLevel: logLevel.NOTHING,
    ...kafkaSecurity(settings.kafka),
  });
  const admin = kafka.admin();
  const cassandra = createCassandra(settings.cassandra);
  async function cleanup(): Promise<void> {
    const steps = [
      () => cassandra.execute(`DROP KEYSPACE IF EXISTS ${settings.cassandra.keyspace}`),
      () =>
        admin.deleteTopics({
          topics: [
            settings.topics.trigger,
            settings.topics.output,
            settings.topics.deadLetter,
            settings.topics.checkpoints,
            settings.topics.tasks,
            settings.topics.status,
          ],
        }),
      () => admin.disconnect(),
      () => cassandra.shutdown(),
    ];
    for (const step of steps) {
      try {
        await step();
      } catch {
        // Cleanup is best effort: one failed step must not skip the rest.
      }
    }
  }
  try {
    await admin.connect();
    await ensureTopics(admin, topicSpecs(settings.topics));
    await cassandra.connect();
    // A schema change waits on the whole node, and a busy one (test files side by side) can miss
    // the driver's timeout. Every statement is IF NOT EXISTS, so trying again is safe.
    for (let attempt = 1; ; attempt++) {
      try {
        await applyCassandraSchema(cassandra, settings.cassandra.keyspace, DEFAULT_REPLICATION);
        break;
      } catch (err) {
        if (attempt >= 3 || (err as { retriable?: unknown }).retriable !== true) throw err;
      }
    }
  } catch (err) {
    // No test gets this context to clean up: what was opened is closed here, or its connections
    // keep jest running after the last test ("did not exit one second after the test run").
    await cleanup();
    throw err;
  }
  const registry = createRegistry(settings.registry);
  return {
    id,
    settings,
    log,
    kafka,
    admin,
    cassandra,
    registry,
    cleanup,
  };
}

export interface ConsumedRecord {
  key: string | null;
  /** A tombstone's is empty too: `tombstone` tells them apart. */
  value: Buffer;
  /** The value is null (a tombstone), not empty. */
  tombstone: boolean;
  headers: IHeaders;
  partition: number;
  offset: string;
  /** The record's timestamp (when it was produced), ms. */
  timestamp: number;
}

/** The test readers' long-poll: short, so that leaving (and reading to an end) does not wait on it. */
const READER_MAX_WAIT_MS = 100;

/**
 * Reads a topic from the beginning with a read_committed consumer until `until` holds for what
 * was read, or `timeoutMs` passes; then keeps reading for `settleMs` more to catch extras
 * (duplicates, records that should not be there).
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  opts: { until: (records: ConsumedRecord[]) => boolean; timeoutMs?: number; settleMs?: number },
): Promise<ConsumedRecord[]> {
  const consumer = kafka.consumer({
    groupId: `reader-${randomBytes(6).toString('hex')}`,
    readUncommitted: false,
    // Disconnecting waits for the fetch in flight, which on a topic with nothing new is a whole
    // long-poll: at kafkajs's default (5 s) every read cost ~4.4 s more than it read.
    maxWaitTimeInMs: READER_MAX_WAIT_MS,
  });
  const records: ConsumedRecord[] = [];
  let satisfied: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (satisfied = resolve));
  // Cleared when `until` wins: a pending timer would keep jest running (--runInBand) after the
  // last test, up to timeoutMs ("Jest did not exit one second after the test run").
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, opts.timeoutMs ?? 30000)));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          records.push(consumedRecord(m, batch.partition));
        }
        if (opts.until(records)) satisfied();
      },
    });
    await Promise.race([done, timeout]);
    await sleep(opts.settleMs ?? 500);
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
  return records;
}

/**
 * Every record of a topic up to the end offsets it has now (the last stable offsets: an open
 * transaction is not waited for), as a read_committed consumer sees them, or a read_uncommitted
 * one (aborted records included) when asked. For "what is there" questions: it returns when the
 * ends are reached, not after an idle period.
 */
export async function readAll(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  opts: { readUncommitted?: boolean; timeoutMs?: number } = {},
): Promise<ConsumedRecord[]> {
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
  const next = new Map([...ends.keys()].map((p) => [p, 0n]));
  const pending = () => [...ends].some(([p, end]) => (next.get(p) as bigint) < end);
  const records: ConsumedRecord[] = [];
  if (!pending()) return records;
  const consumer = kafka.consumer({
    groupId: `reader-${randomBytes(6).toString('hex')}`,
    readUncommitted: opts.readUncommitted === true,
    maxWaitTimeInMs: READER_MAX_WAIT_MS,
  });
  let reached: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (reached = resolve));
  const advance = (partition: number, to: bigint) => {
    if (to > (next.get(partition) ?? 0n)) next.set(partition, to);
    if (!pending()) reached();
  };
  // A batch of transaction markers (or, read_committed, aborted records) reaches no handler but
  // ends with this event: without it an end behind a marker would never be reached.
  // read_uncommitted, the end is the high watermark the fetches report: the admin's offsets are the
  // last stable ones, behind a transaction whose markers are still being written.
  consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
    const { topic: t, partition, lastOffset, highWatermark } = event.payload;
    if (t !== topic) return;
    if (opts.readUncommitted === true && BigInt(highWatermark) > (ends.get(partition) ?? 0n)) {
      ends.set(partition, BigInt(highWatermark));
    }
    advance(partition, BigInt(lastOffset) + 1n);
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${topic} not read to its end within ${opts.timeoutMs ?? 30000} ms`)),
      opts.timeoutMs ?? 30000,
    );
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (BigInt(m.offset) >= (ends.get(batch.partition) ?? 0n)) continue;
          records.push(consumedRecord(m, batch.partition));
          advance(batch.partition, BigInt(m.offset) + 1n);
        }
      },
    });
    await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
  return records;
}

/** A kafkajs message as the tests read it. */
export function consumedRecord(m: KafkaMessage, partition: number): ConsumedRecord {
  return {
    key: m.key?.toString() ?? null,
    value: m.value ?? Buffer.alloc(0),
    tombstone: m.value === null,
    headers: m.headers ?? {},
    partition,
    offset: m.offset,
    timestamp: Number(m.timestamp),
  };
}

export function headerText(headers: IHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.map(String).join(',') : v.toString();
}
