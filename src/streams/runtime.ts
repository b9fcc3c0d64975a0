import { EventEmitter } from 'node:events';
import type { Consumer, EachBatchPayload, Kafka, Message, Producer } from 'kafkajs';
import type { RetrySettings } from '../config';
import { errorCodeOf, messageOf } from '../errors';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { javaCompatiblePartitioner, translateKafkaError } from '../kafka/client';
import { deadLetterRecord } from './dead-letter';
import { retry } from './retry';
import type { InputMessage, OutputRecord, StreamProcessor } from './types';

export interface RuntimeSettings {
  inputTopic: string;
  outputTopic: string;
  deadLetterTopic: string;
  groupId: string;
  produceBatchSize: number;
  produceMaxInFlight: number;
  partitionsConsumedConcurrently: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  retry: RetrySettings;
  /** Where a new consumer group starts. Triggers are requests: a new group reads them all. */
  fromBeginning: boolean;
}

/**
 * INITIALIZED → STARTING → RUNNING → STOPPING → STOPPED, or FAILED from any state when the
 * consumer crashes for good. stop() may be called in any state and any number of times.
 */
export type RuntimeState = 'INITIALIZED' | 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'FAILED';

export interface ProcessedEvent {
  topic: string;
  partition: number;
  offset: string;
  outcome: 'done' | 'dead-lettered';
  records: number;
  ms: number;
  code?: string;
}

const COMMIT_INTERVAL_MS = 500;
const MAX_WAVE = 64;

interface WaveItem<I> {
  message: InputMessage;
  input: I | undefined;
  small: boolean;
}

type Outcome = { outcome: 'done'; records: number } | { outcome: 'dead-lettered'; code: string };

/**
 * consume → process → produce → commit. At least once for now: a trigger's offset is committed
 * only after every record it produced is acknowledged (acks = all, idempotent producer).
 */
export class StreamRuntime<I> {
  private state: RuntimeState = 'INITIALIZED';
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly inFlightControllers = new Set<AbortController>();
  private stopping: Promise<void> | undefined;
  private groupJoins = 0;
  /** Emits 'processed' (ProcessedEvent) and 'state' (RuntimeState). */
  readonly events = new EventEmitter();

  constructor(
    kafka: Kafka,
    private readonly processor: StreamProcessor<I>,
    private readonly settings: RuntimeSettings,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.consumer = kafka.consumer({
      groupId: settings.groupId,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      // One trigger can be large; keep fetches small so a partition's next trigger is not held
      // in memory for long.
      maxBytesPerPartition: 1024 * 1024,
      allowAutoTopicCreation: false,
    });
    this.producer = kafka.producer({
      idempotent: true,
      allowAutoTopicCreation: false,
      createPartitioner: javaCompatiblePartitioner,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.groupJoins++;
      const { memberId, memberAssignment } = event.payload;
      this.log.info({ memberId, assignment: memberAssignment, joins: this.groupJoins }, 'joined consumer group');
    });
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      this.log.error({ err: error, restart }, 'consumer crashed');
      if (!restart) this.setState('FAILED');
    });
  }

  get currentState(): RuntimeState {
    return this.state;
  }

  /** How many times this member joined its group: 1 for a run with no rebalance. */
  get rebalances(): number {
    return Math.max(0, this.groupJoins - 1);
  }

  async start(): Promise<void> {
    if (this.state !== 'INITIALIZED') throw new Error(`cannot start a runtime in state ${this.state}`);
    this.setState('STARTING');
    try {
      await this.producer.connect();
      await this.consumer.connect();
      await this.consumer.subscribe({ topics: [this.settings.inputTopic], fromBeginning: this.settings.fromBeginning });
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.settings.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    } catch (err) {
      this.setState('FAILED');
      await this.disconnectQuietly();
      throw translateKafkaError(err, 'starting the processor');
    }
    this.setState('RUNNING');
    this.log.info({ topic: this.settings.inputTopic, groupId: this.settings.groupId }, 'processor running');
  }

  /** Stops consuming; work in flight is abandoned uncommitted, so it is redone by the next owner. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.state === 'STOPPED') return;
    this.setState('STOPPING');
    for (const controller of this.inFlightControllers) controller.abort(new Error('processor stopping'));
    await this.disconnectQuietly();
    this.setState('STOPPED');
    this.log.info('processor stopped');
  }

  private async disconnectQuietly(): Promise<void> {
    // Each step runs even when the one before it fails.
    for (const step of [() => this.consumer.disconnect(), () => this.producer.disconnect()]) {
      try {
        await step();
      } catch (err) {
        this.log.warn({ err }, 'error while disconnecting');
      }
    }
  }

  private setState(state: RuntimeState): void {
    this.state = state;
    this.events.emit('state', state);
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, resolveOffset, isRunning, isStale } = payload;
    const controller = new AbortController();
    this.inFlightControllers.add(controller);
    const beat = async (): Promise<void> => {
      try {
        await heartbeat();
      } catch (err) {
        // Typically REBALANCE_IN_PROGRESS: give the partition up promptly instead of holding the
        // whole group back until this trigger is done.
        controller.abort(new Error(`heartbeat failed: ${messageOf(err)}`));
      }
    };
    // Offsets of finished triggers are committed together: at the end of the fetched batch, or
    // every COMMIT_INTERVAL_MS while a long batch runs. A commit per trigger would cost one broker
    // round trip per API call under load; this costs at most one interval of redone triggers.
    let uncommitted: string | undefined;
    let lastCommit = Date.now();
    const commit = async (): Promise<void> => {
      if (uncommitted === undefined) return;
      const offset = uncommitted;
      uncommitted = undefined;
      lastCommit = Date.now();
      await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset }]);
    };
    const messages: InputMessage[] = batch.messages.map((m) => ({
      topic: batch.topic,
      partition: batch.partition,
      offset: m.offset,
      timestamp: m.timestamp,
      key: m.key,
      value: m.value,
      headers: m.headers ?? {},
    }));
    try {
      let next = 0;
      while (next < messages.length) {
        if (!isRunning() || isStale() || controller.signal.aborted) break;
        const started = Date.now();
        const wave = await this.takeWave(messages, next);
        let outcomes: Outcome[];
        try {
          const first = wave[0] as WaveItem<I>;
          outcomes =
            wave.length === 1 && !first.small
              ? [await this.handle(first.message, controller.signal, beat, first.input)]
              : await this.handleWave(wave, controller.signal, beat);
        } catch (err) {
          if (controller.signal.aborted) {
            this.log.info(
              { partition: batch.partition, offset: wave[0]?.message.offset, reason: messageOf(err) },
              'trigger abandoned uncommitted; it will be processed again',
            );
            break;
          }
          throw err;
        }
        next += wave.length;
        const last = wave[wave.length - 1] as WaveItem<I>;
        resolveOffset(last.message.offset);
        uncommitted = (BigInt(last.message.offset) + 1n).toString();
        if (Date.now() - lastCommit >= COMMIT_INTERVAL_MS) await commit();
        await beat();
        const ms = Date.now() - started;
        wave.forEach(({ message }, i) => {
          const outcome = outcomes[i] as Outcome;
          this.metrics?.triggersProcessed.inc({ outcome: outcome.outcome });
          this.events.emit('processed', {
            topic: message.topic,
            partition: message.partition,
            offset: message.offset,
            outcome: outcome.outcome,
            records: outcome.outcome === 'done' ? outcome.records : 0,
            code: outcome.outcome === 'dead-lettered' ? outcome.code : undefined,
            ms,
          } satisfies ProcessedEvent);
        });
      }
      try {
        await commit();
      } catch (err) {
        // After a revoked partition the group refuses the commit: the next owner redoes those triggers.
        if (!controller.signal.aborted) throw err;
        this.log.warn({ err }, 'commit refused after the partition was given up');
      }
    } catch (err) {
      // What finished before the failure is fully acknowledged: commit it if the group still lets us.
      await commit().catch((e: unknown) => this.log.warn({ err: e }, 'could not commit finished triggers'));
      throw err;
    } finally {
      this.inFlightControllers.delete(controller);
    }
  }

  /**
   * Consecutive small inputs (one user, a short list) are taken together, up to MAX_WAVE: they
   * are expanded concurrently and their records share produce requests, so a burst of API calls
   * costs a few broker round trips instead of one each. Anything else is taken alone.
   */
  private async takeWave(messages: InputMessage[], from: number): Promise<WaveItem<I>[]> {
    const wave: WaveItem<I>[] = [];
    for (let j = from; j < messages.length && wave.length < MAX_WAVE; j++) {
      const message = messages[j] as InputMessage;
      let input: I | undefined;
      try {
        input = await this.processor.decode(message);
      } catch {
        input = undefined; // handled alone, where decoding is retried or dead-lettered
      }
      const small = input !== undefined && (this.processor.isSmall?.(input) ?? false);
      if (!small) {
        if (wave.length === 0) wave.push({ message, input, small: false });
        break;
      }
      wave.push({ message, input, small: true });
    }
    return wave;
  }

  private async handleWave(wave: WaveItem<I>[], signal: AbortSignal, beat: () => Promise<void>): Promise<Outcome[]> {
    const started = Date.now();
    const outcomes = await retry(
      async () => {
        const sender = this.newSender();
        try {
          const result = await Promise.all(
            wave.map(async ({ message, input }): Promise<Outcome> => {
              try {
                const log = this.log.child(this.processor.describe(input as I));
                const expand = async (): Promise<number> => {
                  const records = await this.expandInto(input as I, message, signal, sender, log);
                  log.debug({ records }, 'trigger expanded');
                  return records;
                };
                const records = await retry(expand, {
                  ...this.settings.retry,
                  signal,
                  onRetry: (err) => {
                    // A failed produce belongs to the whole wave: leave it to the outer retry.
                    if (sender.failed) throw err;
                  },
                });
                return { outcome: 'done', records };
              } catch (err) {
                if (signal.aborted || sender.failed) throw err;
                await this.deadLetter(message, err);
                return { outcome: 'dead-lettered', code: errorCodeOf(err) };
              }
            }),
          );
          await sender.flush();
          return result;
        } catch (err) {
          await sender.settle();
          throw err;
        }
      },
      { ...this.settings.retry, signal, onRetry: () => beat() },
    );
    const records = outcomes.reduce((n, o) => n + (o.outcome === 'done' ? o.records : 0), 0);
    this.metrics?.syncEventsProduced.inc({ source: 'wave' }, records);
    this.log.info({ triggers: wave.length, records, ms: Date.now() - started }, 'small triggers expanded');
    return outcomes;
  }

  /**
   * Feeds one input's chunks into `sender`, one chunk at a time (the sender's window is the
   * backpressure), calling `afterChunk` between chunks. Returns how many records it added.
   */
  private async expandInto(
    input: I,
    message: InputMessage,
    signal: AbortSignal,
    sender: WindowedSender,
    log: Logger,
    afterChunk?: () => Promise<void>,
  ): Promise<number> {
    let records = 0;
    for await (const chunk of this.processor.process(input, { log, signal, message })) {
      await sender.add(chunk);
      records += chunk.length;
      await afterChunk?.();
      if (signal.aborted) throw signal.reason;
    }
    return records;
  }

  private newSender(): WindowedSender {
    return new WindowedSender(
      this.producer,
      this.settings.outputTopic,
      this.settings.produceBatchSize,
      this.settings.produceMaxInFlight,
    );
  }

  private async handle(
    message: InputMessage,
    signal: AbortSignal,
    beat: () => Promise<void>,
    decoded?: I,
  ): Promise<Outcome> {
    try {
      const records = await retry(() => this.processOnce(message, signal, beat, decoded), {
        ...this.settings.retry,
        signal,
        onRetry: async (err, attempt, delayMs) => {
          this.log.warn(
            { err, attempt, delayMs, partition: message.partition, offset: message.offset },
            'trigger failed; retrying',
          );
          await beat();
        },
      });
      return { outcome: 'done', records };
    } catch (err) {
      if (signal.aborted) throw err;
      // Not retriable, or retries spent on something that is not an outage: the input goes to
      // the dead-letter topic with the reason, and the partition moves on.
      await this.deadLetter(message, err);
      return { outcome: 'dead-lettered', code: errorCodeOf(err) };
    }
  }

  private async processOnce(
    message: InputMessage,
    signal: AbortSignal,
    beat: () => Promise<void>,
    decoded?: I,
  ): Promise<number> {
    const input = decoded ?? (await this.processor.decode(message));
    const fields = this.processor.describe(input);
    const log = this.log.child(fields);
    const sender = this.newSender();
    const started = Date.now();
    try {
      await this.expandInto(input, message, signal, sender, log, beat);
      await sender.flush();
    } catch (err) {
      await sender.settle();
      throw err;
    }
    const memory = process.memoryUsage();
    log.info(
      {
        records: sender.acknowledged,
        ms: Date.now() - started,
        rssMb: Math.round(memory.rss / 2 ** 20),
        heapUsedMb: Math.round(memory.heapUsed / 2 ** 20),
        heapTotalMb: Math.round(memory.heapTotal / 2 ** 20),
        externalMb: Math.round(memory.external / 2 ** 20),
      },
      'trigger expanded',
    );
    this.metrics?.syncEventsProduced.inc({ source: String(fields.source ?? 'unknown') }, sender.acknowledged);
    return sender.acknowledged;
  }

  private async deadLetter(message: InputMessage, err: unknown): Promise<void> {
    const record = deadLetterRecord(message, err, this.processor.name, new Date());
    this.log.warn(
      { code: errorCodeOf(err), reason: messageOf(err), partition: message.partition, offset: message.offset },
      'trigger sent to the dead-letter topic',
    );
    this.metrics?.triggersDeadLettered.inc({ code: errorCodeOf(err) });
    await retry(
      async () => {
        try {
          await this.producer.send({ topic: this.settings.deadLetterTopic, acks: -1, messages: [record] });
        } catch (e) {
          throw translateKafkaError(e, 'dead-letter produce');
        }
      },
      { ...this.settings.retry },
    );
  }
}

/**
 * Sends records in batches with at most `maxInFlight` sends outstanding: enough to keep the
 * broker busy, few enough that memory stays bounded and the idempotent producer's per-partition
 * in-flight limit (5) holds.
 */
export class WindowedSender {
  private pending: Message[] = [];
  private readonly inFlight: Promise<void>[] = [];
  private failure: { error: unknown } | undefined;
  acknowledged = 0;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly batchSize: number,
    private readonly maxInFlight: number,
  ) {}

  async add(records: OutputRecord[]): Promise<void> {
    for (const record of records) {
      this.pending.push(record as Message);
      if (this.pending.length >= this.batchSize) await this.sendPending();
    }
  }

  async flush(): Promise<void> {
    if (this.pending.length > 0) await this.sendPending();
    await Promise.all(this.inFlight.splice(0));
    this.throwIfFailed();
  }

  /** Waits for whatever is in flight, ignoring its outcome (used on the error path). */
  async settle(): Promise<void> {
    this.pending = [];
    await Promise.all(this.inFlight.splice(0));
  }

  private async sendPending(): Promise<void> {
    this.throwIfFailed();
    const messages = this.pending;
    this.pending = [];
    // The rejection handler is attached at once: a failed send must never become an unhandled
    // rejection while it waits in the window.
    const sent = this.producer.send({ topic: this.topic, acks: -1, messages }).then(
      () => {
        this.acknowledged += messages.length;
      },
      (error: unknown) => {
        this.failure ??= { error: translateKafkaError(error, `produce to ${this.topic}`) };
      },
    );
    this.inFlight.push(sent);
    if (this.inFlight.length >= this.maxInFlight) await this.inFlight.shift();
    this.throwIfFailed();
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
