import { translateKafkaError } from '../kafka/client';
import type {
  IdempotentProducer,
  ProducerClient,
  ProducerRecord as Message,
  TopicRecords,
  TransactionalProducer,
} from '../kafka/ports';
import { checkpointMessage, type Checkpoint } from './checkpoints';
import { recordBuffers } from './record-buffers';
import type { OutputRecord } from './types';
import { SyncError } from '../errors';
import { withDeadline } from '../util/async';

export type ProcessingGuarantee = 'exactly_once' | 'at_least_once';

/** Where one input partition's output goes, and how its progress is made durable. */
export interface SinkSettings {
  groupId: string;
  inputTopic: string;
  partition: number;
  outputTopic: string;
  deadLetterTopic: string;
  checkpointTopic: string;
  checkpointKey: string;
  checkpointPartition: number;
  /** Records per produce request, and produce requests outstanding at once. */
  batchSize: number;
  maxInFlight: number;
  transactionTimeoutMs: number;
  /**
   * How long a call on a transactional producer may go unanswered before the producer is taken
   * for hung and replaced (the broker has aborted its transaction by then).
   */
  producerUnansweredMs: number;
}

/**
 * The output side of one input partition. Records, dead letters and the checkpoint added between
 * two commits form one unit: under exactly-once a Kafka transaction that also carries the input
 * offset; under at-least-once records acknowledged first, then the checkpoint, then the offset.
 */
export interface PartitionSink {
  readonly guarantee: ProcessingGuarantee;
  /**
   * Takes ownership of the partition's output. Under exactly-once this fences every earlier
   * producer of the partition (a zombie, or ourselves before a crash) and aborts its open
   * transaction, so what is read afterwards (offset, checkpoint) is final.
   */
  open(): Promise<void>;
  add(records: readonly OutputRecord[]): Promise<void>;
  deadLetter(record: Message): Promise<void>;
  /**
   * Makes everything added so far durable, with the checkpoint (null deletes it), the next input
   * offset, and `also`: records for other topics (status, spawned tasks) that belong to this unit.
   */
  commit(opts: CommitOptions): Promise<void>;
  /** Gives up what was added since the last commit (under at-least-once, records already sent stay). */
  abort(): Promise<void>;
  /** Records added since the last commit, and when the first of them was added. */
  readonly uncommitted: number;
  readonly openSince: number | undefined;
  close(): Promise<void>;
}

export interface CommitOptions {
  checkpoint?: Checkpoint | null;
  nextOffset?: string;
  also?: Array<{ topic: string; messages: Message[] }>;
}

/** A send function's promises, at most `limit` outstanding; the first failure is kept and rethrown. */
class SendWindow {
  private inFlight: Promise<void>[] = [];
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {}

  async push(send: () => Promise<unknown>, what: string): Promise<void> {
    this.throwIfFailed();
    // The rejection handler is attached at once: a failed send never becomes an unhandled rejection.
    const sent = send().then(
      () => undefined,
      (error: unknown) => {
        this.failure ??= { error: translateKafkaError(error, what) };
      },
    );
    this.inFlight.push(sent);
    if (this.inFlight.length >= this.limit) await this.inFlight.shift();
    this.throwIfFailed();
  }

  async drain(): Promise<void> {
    await Promise.all(this.inFlight.splice(0));
    this.throwIfFailed();
  }

  /** Waits for what is in flight and forgets its outcome (the error path). */
  async settle(): Promise<void> {
    await Promise.all(this.inFlight.splice(0));
    this.failure = undefined;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

/**
 * What both sinks share: output records gathered into produce requests of `batchSize`, sent with
 * at most `maxInFlight` outstanding, and the count and age of what was added since the last commit.
 */
abstract class BatchingSink {
  protected pending: Message[] = [];
  protected readonly window: SendWindow;
  protected added = 0;
  protected started: number | undefined;

  constructor(protected readonly settings: SinkSettings) {
    this.window = new SendWindow(settings.maxInFlight);
  }

  get uncommitted(): number {
    return this.added;
  }

  get openSince(): number | undefined {
    return this.started;
  }

  async add(records: readonly OutputRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.beforeAdd();
    this.started ??= Date.now();
    this.added += records.length;
    for (const record of records) {
      this.pending.push(record as Message);
      if (this.pending.length >= this.settings.batchSize) await this.sendPending();
    }
  }

  /** Produces what is pending to the output topic, within the window. */
  protected async sendPending(): Promise<void> {
    const messages = this.pending;
    this.pending = [];
    const { outputTopic } = this.settings;
    await this.window.push(
      () => this.produce(outputTopic, messages).then(() => this.produced(messages)),
      `produce to ${outputTopic}`,
    );
  }

  /** Called once produce() has resolved for `messages`: each sink knows when its client is done reading them. */
  protected abstract produced(messages: Message[]): void;

  /** Forgets the unit in progress (what is in flight is waited for, its outcome ignored). */
  protected async forgetUnit(): Promise<void> {
    this.pending = [];
    this.markCommitted();
    await this.window.settle();
  }

  protected markCommitted(): void {
    this.added = 0;
    this.started = undefined;
  }

  protected async beforeAdd(): Promise<void> {}

  protected abstract produce(topic: string, messages: Message[]): Promise<unknown>;
}

/**
 * Exactly-once: one transactional producer per input partition, transactional id
 * `<group>-<topic>-<partition>` (EOS v1: fencing does not depend on KIP-447, so every client we
 * ship fences the same way). The next owner's InitProducerId bumps the epoch and aborts whatever
 * the old owner left open.
 */
export class TransactionalSink extends BatchingSink implements PartitionSink {
  readonly guarantee = 'exactly_once';
  private producer: TransactionalProducer | undefined;

  constructor(
    private readonly client: ProducerClient,
    settings: SinkSettings,
  ) {
    super(settings);
  }

  get transactionalId(): string {
    const { groupId, inputTopic, partition } = this.settings;
    return `${groupId}-${inputTopic}-${partition}`;
  }

  async open(): Promise<void> {
    await this.close();
    const producer = this.client.transactionalProducer({
      transactionalId: this.transactionalId,
      transactionTimeoutMs: this.settings.transactionTimeoutMs,
    });
    await this.answered(producer, 'fencing', producer.open());
    this.producer = producer;
  }

  /**
   * A call on `producer`, given producerUnansweredMs to answer. A client that never answers (a
   * callback lost in a library, a request that is never sent) would hold the partition for good
   * while the consumer's heartbeats keep the group content. The producer is given up instead, as
   * if fenced: the partition is restored with a new one, whose fencing aborts what this one left.
   */
  private answered<T>(producer: TransactionalProducer, what: string, call: Promise<T>): Promise<T> {
    const ms = this.settings.producerUnansweredMs;
    return withDeadline(call, ms, () => {
      if (this.producer === producer) this.producer = undefined;
      // Not awaited: a client that stopped answering may not answer its close either.
      producer.close().catch(() => undefined);
      return new SyncError(
        'SYNC_FENCED',
        `${what} (${this.transactionalId}): the Kafka client gave no answer in ${ms} ms; its producer is given up and replaced`,
        { retriable: false },
      );
    });
  }

  private async transaction(): Promise<TransactionalProducer> {
    const producer = this.producer;
    if (!producer) throw translateKafkaError(new Error('sink not open'), 'transaction');
    if (producer.inTransaction) return producer;
    await this.answered(producer, 'beginning a transaction', producer.begin());
    this.started = Date.now();
    return producer;
  }

  protected override async beforeAdd(): Promise<void> {
    await this.transaction();
  }

  protected produce(topic: string, messages: Message[]): Promise<unknown> {
    const producer = this.producer as TransactionalProducer;
    return this.answered(producer, `producing to ${topic}`, producer.send([{ topic, messages }]));
  }

  /**
   * A transactional send resolves once the client is done with the records: librdkafka has
   * copied them into its queue, kafkajs has had them acknowledged (its retries re-encode from the
   * records, so not before). Their event buffers can be written again.
   */
  protected produced(messages: Message[]): void {
    recordBuffers.release(messages);
  }

  async deadLetter(record: Message): Promise<void> {
    const producer = await this.transaction();
    const { deadLetterTopic } = this.settings;
    await this.window.push(
      () =>
        this.answered(
          producer,
          `producing to ${deadLetterTopic}`,
          producer.send([{ topic: deadLetterTopic, messages: [record] }]),
        ),
      `dead-letter produce to ${deadLetterTopic}`,
    );
  }

  async commit(opts: CommitOptions): Promise<void> {
    const { settings } = this;
    const producer = await this.transaction();
    try {
      await this.window.drain();
      // The last records, the checkpoint, status and spawned tasks travel in one produce request.
      const topicMessages: TopicRecords[] = [...(opts.also ?? []).filter((t) => t.messages.length > 0)];
      if (this.pending.length > 0) topicMessages.push({ topic: settings.outputTopic, messages: this.pending });
      if (opts.checkpoint !== undefined) {
        topicMessages.push({
          topic: settings.checkpointTopic,
          messages: [checkpointMessage(settings.checkpointKey, settings.checkpointPartition, opts.checkpoint)],
        });
      }
      const last = this.pending;
      this.pending = [];
      if (topicMessages.length > 0) await this.answered(producer, 'producing', producer.send(topicMessages));
      this.produced(last);
      if (opts.nextOffset !== undefined) {
        const { groupId, inputTopic, partition } = settings;
        await this.answered(
          producer,
          'sending offsets',
          producer.sendOffsets(groupId, inputTopic, partition, opts.nextOffset),
        );
      }
      await this.answered(producer, 'committing', producer.commit());
    } catch (err) {
      throw translateKafkaError(err, `committing a transaction of ${this.transactionalId}`);
    }
    this.markCommitted();
  }

  async abort(): Promise<void> {
    await this.forgetUnit();
    const producer = this.producer;
    if (!producer?.inTransaction) return;
    try {
      await this.answered(producer, 'aborting', producer.abort());
    } catch (err) {
      // A producer stuck in "ongoing transaction" (tulios/kafkajs#1315): only a new producer with
      // the same id recovers it, and that is what open() makes. Until then this sink is unusable.
      await this.close();
      throw translateKafkaError(err, `aborting a transaction of ${this.transactionalId}`);
    }
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await this.forgetUnit();
    if (!producer) return;
    // A client that stopped answering may not answer its close either: it is then left behind.
    const closing = withDeadline(producer.close(), this.settings.producerUnansweredMs, () => new Error('unanswered'));
    await closing.catch(() => undefined);
  }
}

/**
 * At-least-once: records are produced by an idempotent producer and acknowledged before the
 * checkpoint and the offset are written, so a crash repeats at most the records since the last
 * commit; nothing is ever lost. Cheaper: no transaction markers, no fencing.
 */
export class AtLeastOnceSink extends BatchingSink implements PartitionSink {
  readonly guarantee = 'at_least_once';
  private producer: IdempotentProducer | undefined;

  constructor(
    private readonly client: ProducerClient,
    settings: SinkSettings,
    private readonly commitOffset: (topic: string, partition: number, offset: string) => Promise<void>,
  ) {
    super(settings);
  }

  async open(): Promise<void> {
    if (this.producer) return;
    const producer = this.client.idempotentProducer();
    await producer.open();
    this.producer = producer;
  }

  private get connected(): IdempotentProducer {
    if (!this.producer) throw translateKafkaError(new Error('sink not open'), 'produce');
    return this.producer;
  }

  /** Enqueued since the last flush: a client may still read them until it has flushed. */
  private enqueued: Message[][] = [];

  /** Acknowledged by commit's flush, before the checkpoint and the offset are written. */
  protected produce(topic: string, messages: Message[]): Promise<unknown> {
    return this.connected.enqueue([{ topic, messages }]);
  }

  protected produced(messages: Message[]): void {
    this.enqueued.push(messages);
  }

  async deadLetter(record: Message): Promise<void> {
    const { deadLetterTopic } = this.settings;
    try {
      await this.connected.send([{ topic: deadLetterTopic, messages: [record] }]);
    } catch (err) {
      throw translateKafkaError(err, `dead-letter produce to ${deadLetterTopic}`);
    }
  }

  async commit(opts: CommitOptions): Promise<void> {
    const { settings } = this;
    if (this.pending.length > 0) await this.sendPending();
    await this.window.drain();
    try {
      await this.connected.flush();
    } catch (err) {
      throw translateKafkaError(err, `produce to ${settings.outputTopic}`);
    }
    for (const messages of this.enqueued.splice(0)) recordBuffers.release(messages);
    const also = (opts.also ?? []).filter((t) => t.messages.length > 0);
    if (also.length > 0) {
      try {
        await this.connected.send(also);
      } catch (err) {
        throw translateKafkaError(err, 'writing status and tasks');
      }
    }
    if (opts.checkpoint !== undefined) {
      try {
        await this.connected.send([
          {
            topic: settings.checkpointTopic,
            messages: [checkpointMessage(settings.checkpointKey, settings.checkpointPartition, opts.checkpoint)],
          },
        ]);
      } catch (err) {
        throw translateKafkaError(err, `writing a checkpoint to ${settings.checkpointTopic}`);
      }
    }
    if (opts.nextOffset !== undefined) {
      try {
        await this.commitOffset(settings.inputTopic, settings.partition, opts.nextOffset);
      } catch (err) {
        throw translateKafkaError(err, 'committing the input offset');
      }
    }
    this.markCommitted();
  }

  async abort(): Promise<void> {
    await this.forgetUnit();
    // Never released: a client may still hold them, and the garbage collector frees them anyway.
    this.enqueued = [];
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await this.abort();
    await producer?.close();
  }
}
