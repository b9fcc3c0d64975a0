import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, ConsumerRunConfig, Kafka } from 'kafkajs';
import { reviveAfterOutages } from '../kafka/consumer-revival';
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
  private stopped = false;

  constructor(
    kafka: Kafka,
    private readonly admin: Admin,
    readonly topic: string,
    private readonly decode: (value: Buffer) => V,
    private readonly log: Logger,
    groupPrefix: string,
    /** Told of every change, for indexes kept beside the table. */
    private readonly onChange?: (key: string, value: V | undefined) => void,
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
      const run: ConsumerRunConfig = {
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const applied = this.positions.get(batch.partition) ?? 0n;
          for (const message of batch.messages) {
            // Read again after a restart (the group never commits, so it starts over): what was
            // applied already is skipped, so no key ever goes back to an older value.
            if (BigInt(message.offset) < applied) continue;
            const key = message.key?.toString();
            if (key === undefined) continue;
            if (message.value === null || message.value.length === 0) {
              this.values.delete(key);
              this.onChange?.(key, undefined);
            } else {
              try {
                const value = this.decode(message.value);
                this.values.set(key, value);
                this.onChange?.(key, value);
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
      };
      reviveAfterOutages(this.consumer, run, {
        what: `reading ${this.topic}`,
        log: this.log,
        stopping: () => this.stopped,
        onFatal: (err) => {
          this.failure = err;
        },
      });
      await this.consumer.run(run);
    } catch (err) {
      this.failure = err;
      throw translateKafkaError(err, `reading ${this.topic}`);
    }
  }

  get(key: string): V | undefined {
    return this.values.get(key);
  }

  /** Resolves once the value read for `key` satisfies `test` (the reader keeps reading meanwhile). */
  async waitFor(key: string, test: (value: V | undefined) => boolean, signal?: AbortSignal): Promise<void> {
    while (!test(this.values.get(key))) {
      this.throwIfFailed();
      await sleep(5, signal);
    }
  }

  /** Forgets a key locally (the topic keeps it until compaction or retention removes it). */
  forget(key: string): void {
    this.values.delete(key);
  }

  /**
   * Resolves once every record committed to `partition` (all partitions when left out) before
   * this call has been read. Records of open transactions lie past the last stable offset, which
   * is where we stop waiting.
   */
  async caughtUp(partition?: number, signal?: AbortSignal): Promise<void> {
    this.throwIfFailed();
    let ends: Array<{ partition: number; end: bigint }>;
    try {
      const offsets = await this.admin.fetchTopicOffsets(this.topic);
      ends = offsets
        .filter((o) => partition === undefined || o.partition === partition)
        .map((o) => ({ partition: o.partition, end: BigInt(o.offset) }));
    } catch (err) {
      throw translateKafkaError(err, `reading the end of ${this.topic}`);
    }
    for (const { partition: p, end } of ends) {
      while ((this.positions.get(p) ?? 0n) < end) {
        this.throwIfFailed();
        await sleep(10, signal);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.consumer.disconnect();
  }

  /** Checked on every round of a wait: a reader that failed meanwhile would leave it waiting for good. */
  private throwIfFailed(): void {
    if (this.failure !== undefined) throw translateKafkaError(this.failure, `reading ${this.topic}`);
  }

  private advance(partition: number, next: bigint): void {
    if (next > (this.positions.get(partition) ?? 0n)) this.positions.set(partition, next);
  }
}
