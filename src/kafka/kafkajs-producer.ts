import {
  CompressionTypes,
  type Kafka,
  type Message,
  type Producer,
  type ProducerConfig,
  type Transaction,
} from 'kafkajs';
import { sleep } from '../util/async';
import { javaCompatiblePartitioner, translateKafkaError } from './client';
import type {
  IdempotentProducer,
  KafkaCompression,
  ProducerClient,
  TopicRecords,
  TransactionalProducer,
  TransactionalProducerOptions,
} from './ports';

/** Producer retries: short first waits (the transaction coordinator answers CONCURRENT_TRANSACTIONS for a few ms after a commit; kafkajs's default first wait is 300 ms), then up to ~10 s in all before the error reaches the runtime as an outage. */
const PRODUCER_RETRY = { initialRetryTime: 20, maxRetryTime: 2000, retries: 10, multiplier: 2 };

async function retryConcurrentTransactions<T>(fn: () => Promise<T>): Promise<T> {
  // kafkajs does not retry AddOffsetsToTxn when the coordinator is still finishing the previous
  // transaction (tulios/kafkajs#1416); the Java client waits ~20 ms and asks again.
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const type = (err as { type?: unknown }).type;
      if (type !== 'CONCURRENT_TRANSACTIONS' || attempt >= 50) throw err;
      await sleep(Math.min(20 * (attempt + 1), 200));
    }
  }
}

/**
 * Every kafkajs producer of ours: idempotent, Java-compatible partitioning, our retries, plus
 * `extra` (the transactional settings). Connected, then `ready` run on it; when either fails the
 * producer is disconnected again, so a failed open leaves no connection behind.
 */
async function openProducer(
  kafka: Kafka,
  extra: Partial<ProducerConfig>,
  what: string,
  ready?: (producer: Producer) => Promise<void>,
): Promise<Producer> {
  const producer = kafka.producer({
    idempotent: true,
    allowAutoTopicCreation: false,
    createPartitioner: javaCompatiblePartitioner,
    retry: PRODUCER_RETRY,
    ...extra,
  });
  try {
    await producer.connect();
    await ready?.(producer);
  } catch (err) {
    await producer.disconnect().catch(() => undefined);
    throw translateKafkaError(err, what);
  }
  return producer;
}

// Our records are kafkajs messages already (same field names and value types).
function asTopicMessages(batches: readonly TopicRecords[]): Array<{ topic: string; messages: Message[] }> {
  return batches as Array<{ topic: string; messages: Message[] }>;
}

/**
 * kafkajs has no KIP-447 (its sendOffsets carries no group generation), so zombies are fenced the
 * classic way: the id belongs to the input partition, and the next owner's InitProducerId bumps
 * the epoch and aborts whatever the old owner left open.
 */
class KafkajsTransactionalProducer implements TransactionalProducer {
  private producer: Producer | undefined;
  private txn: Transaction | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: TransactionalProducerOptions,
    private readonly compression: CompressionTypes,
  ) {}

  get inTransaction(): boolean {
    return this.txn !== undefined;
  }

  async open(): Promise<void> {
    const { transactionalId, transactionTimeoutMs } = this.options;
    this.producer = await openProducer(
      this.kafka,
      { transactionalId, maxInFlightRequests: 1, transactionTimeout: transactionTimeoutMs },
      `fencing ${transactionalId}`,
      async (producer) => {
        // kafkajs sends InitProducerId for the transactional id lazily, on the first transaction():
        // begin and abort an empty one to fence now, before the offset and checkpoint are read.
        const fence = await producer.transaction();
        await fence.abort();
      },
    );
  }

  async begin(): Promise<void> {
    if (!this.producer) throw translateKafkaError(new Error('producer not open'), 'transaction');
    try {
      this.txn = await this.producer.transaction();
    } catch (err) {
      throw translateKafkaError(err, `beginning a transaction of ${this.options.transactionalId}`);
    }
  }

  private get current(): Transaction {
    if (!this.txn) throw translateKafkaError(new Error('no transaction in progress'), 'transaction');
    return this.txn;
  }

  async send(batches: readonly TopicRecords[]): Promise<void> {
    const txn = this.current;
    try {
      if (batches.length === 1) {
        const [only] = batches as [TopicRecords];
        await txn.send({
          topic: only.topic,
          acks: -1,
          compression: this.compression,
          messages: only.messages as Message[],
        });
      } else {
        await txn.sendBatch({ acks: -1, compression: this.compression, topicMessages: asTopicMessages(batches) });
      }
    } catch (err) {
      throw translateKafkaError(err, `produce to ${batches.map((b) => b.topic).join(',')}`);
    }
  }

  /** kafkajs's send resolves once the records are acknowledged: nothing is left to wait for. */
  async flush(): Promise<void> {}

  async sendOffsets(groupId: string, topic: string, partition: number, offset: string): Promise<void> {
    const txn = this.current;
    const offsets = { consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition, offset }] }] };
    try {
      await retryConcurrentTransactions(() => txn.sendOffsets(offsets));
    } catch (err) {
      throw translateKafkaError(err, `sending offsets of ${this.options.transactionalId}`);
    }
  }

  async commit(): Promise<void> {
    const txn = this.current;
    try {
      await txn.commit();
    } catch (err) {
      // The transaction stays ours to abort.
      throw translateKafkaError(err, `committing a transaction of ${this.options.transactionalId}`);
    }
    this.txn = undefined;
  }

  async abort(): Promise<void> {
    const txn = this.txn;
    this.txn = undefined;
    if (!txn?.isActive()) return;
    try {
      await txn.abort();
    } catch (err) {
      throw translateKafkaError(err, `aborting a transaction of ${this.options.transactionalId}`);
    }
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    this.txn = undefined;
    await producer?.disconnect().catch(() => undefined);
  }
}

class KafkajsIdempotentProducer implements IdempotentProducer {
  private producer: Producer | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly compression: CompressionTypes,
  ) {}

  async open(): Promise<void> {
    if (this.producer) return;
    this.producer = await openProducer(this.kafka, {}, 'connecting the producer');
  }

  async send(batches: readonly TopicRecords[]): Promise<void> {
    const what = `produce to ${batches.map((b) => b.topic).join(',')}`;
    if (!this.producer) throw translateKafkaError(new Error('producer not open'), what);
    try {
      await this.producer.sendBatch({
        acks: -1,
        compression: this.compression,
        topicMessages: asTopicMessages(batches),
      });
    } catch (err) {
      throw translateKafkaError(err, what);
    }
  }

  /** kafkajs resolves a send only when it is acknowledged: enqueuing is sending. */
  enqueue(batches: readonly TopicRecords[]): Promise<void> {
    return this.send(batches);
  }

  /** Nothing is outstanding once the sends have resolved. */
  async flush(): Promise<void> {}

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }
}

const KAFKAJS_COMPRESSION: Record<KafkaCompression, CompressionTypes> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  // Encoded in JavaScript (src/kafka/lz4.ts), registered with kafkajs by src/kafka/compression-codecs.ts.
  lz4: CompressionTypes.LZ4,
};

/** The kafkajs adapter: one kafkajs producer per sink, on the runtime's own Kafka instance. */
export function kafkajsProducerClient(kafka: Kafka, compression: KafkaCompression): ProducerClient {
  const codec = KAFKAJS_COMPRESSION[compression];
  return {
    name: 'kafkajs',
    transactionalProducer: (options) => new KafkajsTransactionalProducer(kafka, options, codec),
    idempotentProducer: () => new KafkajsIdempotentProducer(kafka, codec),
    close: async () => undefined,
  };
}
