import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import { translateKafkaError } from '../kafka/client';
import type { Logger } from '../observability/logger';
import { sleep } from '../util/async';

/**
 * A compacted topic read back as a table, the way Kafka Streams restores a store from its
 * changelog: one consumer per process reads every partition from the beginning (read_committed,
 * so aborted checkpoints never show) and keeps the last value of each key; a null value deletes
 * the key. `caughtUp(partition)` waits until everything committed to that partition before the
 * call has been read, which is what makes a restore after fencing exact.
 */
export class CompactedTable<V> {
  private readonly values = new Map<string, V>();
  /** Per partition: the offset after the last record (data or control) we have read. */
  private readonly positions = new Map<number, bigint>();
  private readonly consumer: Consumer;
  private started = false;
  private failure: unknown;

  constructor(
    kafka: Kafka,
    private readonly admin: Admin,
    readonly topic: string,
    private readonly decode: (value: Buffer) => V,
    private readonly log: Logger,
    groupPrefix: string,
  ) {
    // A group of its own, never committed: every process reads the whole table, as a global store.
    this.consumer = kafka.consumer({
      groupId: `${groupPrefix}.table.${randomUUID()}`,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 1000,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 5000 },
    });
    // Batches made only of control records or aborted data reach no handler, but do end with this
    // event: it is how we learn that the reader has passed a transaction marker.
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, (event) => {
      const { topic, partition, lastOffset } = event.payload;
      if (topic === this.topic) this.advance(partition, BigInt(lastOffset) + 1n);
    });
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      await this.consumer.connect();
      await this.consumer.subscribe({ topics: [this.topic], fromBeginning: true });
      await this.consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const message of batch.messages) {
            const key = message.key?.toString();
            if (key === undefined) continue;
            if (message.value === null || message.value.length === 0) this.values.delete(key);
            else {
              try {
                this.values.set(key, this.decode(message.value));
              } catch (err) {
                this.log.warn(
                  { err, topic: this.topic, key, offset: message.offset },
                  'unreadable table record skipped',
                );
              }
            }
            this.advance(batch.partition, BigInt(message.offset) + 1n);
          }
        },
      });
    } catch (err) {
      this.failure = err;
      throw translateKafkaError(err, `reading ${this.topic}`);
    }
  }

  get(key: string): V | undefined {
    return this.values.get(key);
  }

  entries(): IterableIterator<[string, V]> {
    return this.values.entries();
  }

  /**
   * Resolves once every record committed to `partition` before this call has been read. Records
   * of open transactions lie past the last stable offset, which is where we stop waiting.
   */
  async caughtUp(partition: number, signal?: AbortSignal): Promise<void> {
    if (this.failure !== undefined) throw translateKafkaError(this.failure, `reading ${this.topic}`);
    let end: bigint;
    try {
      const offsets = await this.admin.fetchTopicOffsets(this.topic);
      const found = offsets.find((o) => o.partition === partition);
      end = BigInt(found?.offset ?? '0');
    } catch (err) {
      throw translateKafkaError(err, `reading the end of ${this.topic}`);
    }
    while ((this.positions.get(partition) ?? 0n) < end) await sleep(10, signal);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }

  private advance(partition: number, next: bigint): void {
    if (next > (this.positions.get(partition) ?? 0n)) this.positions.set(partition, next);
  }
}
