import type { ConsumerConfig, Kafka, KafkaMessage } from 'kafkajs';
import { SyncError } from '../errors';

/** What to read of one partition: offsets `from` up to `to`, exclusive. */
export interface PartitionRange {
  partition: number;
  from: bigint;
  to: bigint;
}

export interface ReadToEndOptions {
  /** The reader's consumer group: never joined by anyone else, never committed. */
  groupId: string;
  /** Gives up (SYNC_TIMEOUT, retriable) when the ends are not reached in this time. */
  timeoutMs: number;
  /** Added to the timeout's message: what the caller can do about it. */
  timeoutHint?: string;
  /** More consumer settings (fetch sizes, say); the isolation level stays read_committed. */
  consumer?: Omit<Partial<ConsumerConfig>, 'groupId' | 'readUncommitted'>;
  /**
   * Every record inside its partition's range, in offset order per partition. Returning true
   * ends the read at once (a limit reached); the records after it are not handed over.
   */
  onRecord: (partition: number, message: KafkaMessage) => boolean | void;
}

/**
 * Reads `ranges` of `topic` with a read_committed consumer of its own and returns once every
 * partition has been read up to its `to` (ranges fixed by the caller, typically the ends a topic
 * had when the read began, so records written meanwhile are not waited for), or `onRecord` asked
 * to stop. Ranges that are empty return at once, without a consumer.
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  ranges: readonly PartitionRange[],
  options: ReadToEndOptions,
): Promise<void> {
  const next = new Map(ranges.map((r) => [r.partition, r.from]));
  const end = new Map(ranges.map((r) => [r.partition, r.to]));
  const pending = () => [...end].filter(([p, e]) => (next.get(p) as bigint) < e).map(([p]) => p);
  if (pending().length === 0) return;

  const consumer = kafka.consumer({
    readUncommitted: false,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 500,
    ...options.consumer,
    groupId: options.groupId,
  });
  let stopped = false;
  let finish: (err?: unknown) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => (finish = (err) => (err ? reject(err) : resolve())));
  const advance = (partition: number, to: bigint) => {
    if (to > (next.get(partition) ?? 0n)) next.set(partition, to);
    if (pending().length === 0) finish();
  };
  // A batch of transaction markers or aborted records reaches no handler but ends with this event:
  // without it the read would wait forever for an end that lies behind a marker.
  consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
    const { topic: t, partition, lastOffset } = event.payload;
    if (t === topic) advance(partition, BigInt(lastOffset) + 1n);
  });
  // A crash kafkajs does not restart from (a refused grant, say) would otherwise wait for the timeout.
  consumer.on(consumer.events.CRASH, (event) => {
    if (!event.payload.restart) finish(event.payload.error);
  });
  const timer = setTimeout(() => {
    const behind = pending().map((p) => `partition ${p} at ${next.get(p)} of ${end.get(p)}`);
    const hint = options.timeoutHint === undefined ? '' : `; ${options.timeoutHint}`;
    finish(
      new SyncError(
        'SYNC_TIMEOUT',
        `reading ${topic} did not reach its end within ${options.timeoutMs} ms (${behind.join(', ')})${hint}`,
        { retriable: true },
      ),
    );
  }, options.timeoutMs);
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const stop = end.get(batch.partition) ?? 0n;
        for (const message of batch.messages) {
          if (stopped) break;
          const offset = BigInt(message.offset);
          if (offset < (next.get(batch.partition) ?? 0n) || offset >= stop) continue;
          if (options.onRecord(batch.partition, message) === true) {
            stopped = true;
            finish();
          }
          advance(batch.partition, offset + 1n);
        }
      },
    });
    for (const [partition, from] of next) {
      if ((end.get(partition) ?? 0n) <= from) consumer.pause([{ topic, partitions: [partition] }]);
      else if (from > 0n) consumer.seek({ topic, partition, offset: from.toString() });
    }
    await done;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
}
