import { EventEmitter } from 'node:events';
import type { Admin, Consumer, ConsumerRunConfig, EachBatchPayload, Kafka } from 'kafkajs';
import { reviveAfterOutages } from '../kafka/consumer-revival';
import type { RetrySettings } from '../config';
import { errorKind, messageOf, SyncError } from '../errors';
import { translateKafkaError } from '../kafka/client';
import type { ProducerClient } from '../kafka/ports';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { sleep, withDeadline } from '../util/async';
import {
  checkpointKey,
  checkpointPartition,
  decodeCheckpointOrMarker,
  type Checkpoint,
  type RestoreMarker,
} from './checkpoints';
import { CompactedTable } from './compacted-table';
import { PartitionWorker, type ProcessedEvent } from './partition-worker';
import { AtLeastOnceSink, TransactionalSink, type PartitionSink, type ProcessingGuarantee } from './sink';
import type { InputMessage, StreamProcessor } from './types';

export type { ProcessedEvent } from './partition-worker';

export interface RuntimeSettings {
  inputTopic: string;
  /**
   * Inputs a processor spawns (token-range tasks of a big trigger) go here; the group consumes
   * it beside the input topic, so every member takes a share.
   */
  taskTopic?: string;
  /** Compacted; where each input's status is written with its work. */
  statusTopic?: string;
  /** Output events per second for this process, across its partitions (0: unlimited). */
  maxEventsPerSecond: number;
  outputTopic: string;
  deadLetterTopic: string;
  checkpointTopic: string;
  groupId: string;
  guarantee: ProcessingGuarantee;
  produceBatchSize: number;
  produceMaxInFlight: number;
  partitionsConsumedConcurrently: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** Records per transaction (and checkpoint), and the longest a transaction stays open. */
  txnMaxRecords: number;
  txnMaxMs: number;
  transactionTimeoutMs: number;
  /** How long a producer call may go unanswered before the producer is replaced (see TransactionalSink). */
  producerUnansweredMs: number;
  /** How long stop() may take before it gives up waiting (the process then exits anyway). */
  shutdownTimeoutMs: number;
  maxDeadLetterBytes: number;
  retry: RetrySettings;
  /** Where a new consumer group starts. Triggers are requests: a new group reads them all. */
  fromBeginning: boolean;
}

/**
 * INITIALIZED → STARTING → RUNNING → STOPPING → STOPPED, or FAILED when a fatal error (bad
 * configuration, permissions) stops it or the consumer crashes for good. stop() may be called in
 * any state and any number of times; it shares one promise.
 */
export type RuntimeState = 'INITIALIZED' | 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'FAILED';

const MAX_WAVE = 64;

/**
 * The consume loop: a kafkajs consumer group over the input topic, one PartitionWorker (and
 * sink) per input partition, heartbeats on a timer while work runs, and the checkpoint table.
 * The processor never sees Kafka; the workers own commits, transactions, retries and dead letters.
 */
export class StreamRuntime<I> {
  private state: RuntimeState = 'INITIALIZED';
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private readonly checkpoints: CompactedTable<Checkpoint | RestoreMarker>;
  /** One worker per owned partition of the input and the task topic, by `topic:partition`. */
  private readonly workers = new Map<string, PartitionWorker<I>>();
  private statusPartitions = 1;
  private readonly pacer: RatePacer | undefined;
  /** Under a rate limit, records are handed over in tenth-of-a-second slices, so output is even. */
  private readonly paceSlice: number;
  private readonly inFlight = new Set<AbortController>();
  private checkpointPartitions = 1;
  private generation = 0;
  /** This member's partitions of the task topic in the current generation. */
  private taskPartitions: number[] = [];
  /** Aborts restores started ahead of a batch (PartitionWorker.prepare) when the runtime stops. */
  private readonly stopSignal = new AbortController();
  private groupJoins = 0;
  private stopping: Promise<void> | undefined;
  private fatalError: unknown;
  /** Emits 'processed' (ProcessedEvent), 'state' (RuntimeState) and 'fatal' (the error). */
  readonly events = new EventEmitter();

  /**
   * `kafka` serves the consumers and the admin; `producers` (closed with the runtime) makes each
   * partition's sink producer, with whichever client KAFKA_CLIENT chose.
   */
  constructor(
    kafka: Kafka,
    private readonly producers: ProducerClient,
    private readonly processor: StreamProcessor<I>,
    private readonly settings: RuntimeSettings,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.consumer = kafka.consumer({
      groupId: settings.groupId,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      // A rebalance waits for work in flight; ours gives partitions up within a chunk.
      rebalanceTimeout: Math.max(settings.sessionTimeoutMs, 30000),
      // One trigger can be large; keep fetches small so a partition's next trigger is not held
      // in memory for long.
      maxBytesPerPartition: 1024 * 1024,
      // Leaving the group waits for the fetch in flight: a short long-poll keeps SIGTERM quick.
      maxWaitTimeInMs: 1000,
      allowAutoTopicCreation: false,
      readUncommitted: false,
      // An outage is waited out for as long as it lasts: the consumer restarts rather than dies.
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10000 },
    });
    this.admin = kafka.admin();
    this.pacer = settings.maxEventsPerSecond > 0 ? new RatePacer(settings.maxEventsPerSecond) : undefined;
    this.paceSlice = Math.max(1, Math.ceil(settings.maxEventsPerSecond / 10));
    this.checkpoints = new CompactedTable(
      kafka,
      this.admin,
      settings.checkpointTopic,
      decodeCheckpointOrMarker,
      log,
      settings.groupId,
    );
    this.events.on('error', () => undefined);
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.groupJoins++;
      this.generation++;
      const { memberId, memberAssignment } = event.payload;
      const mine = new Set(
        Object.entries(memberAssignment).flatMap(([topic, partitions]) => partitions.map((p) => `${topic}:${p}`)),
      );
      const { taskTopic } = this.settings;
      this.taskPartitions = taskTopic ? [...(memberAssignment[taskTopic] ?? [])] : [];
      // Partitions that went elsewhere: their sinks are closed; the new owner fences them anyway.
      for (const [key, worker] of this.workers) {
        if (!mine.has(key)) {
          this.workers.delete(key);
          void worker.close();
        }
      }
      this.log.info({ memberId, assignment: [...mine], joins: this.groupJoins }, 'joined consumer group');
    });
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      this.log.error({ err: error, restart }, 'consumer crashed');
    });
  }

  get currentState(): RuntimeState {
    return this.state;
  }

  /** Consuming, not failed, not stopping: what /ready reports. */
  get ready(): boolean {
    return this.state === 'RUNNING';
  }

  /** How many times this member joined its group after the first: 0 for a run with no rebalance. */
  get rebalances(): number {
    return Math.max(0, this.groupJoins - 1);
  }

  get failure(): unknown {
    return this.fatalError;
  }

  async start(): Promise<void> {
    if (this.state !== 'INITIALIZED') throw new Error(`cannot start a runtime in state ${this.state}`);
    this.setState('STARTING');
    try {
      await this.admin.connect();
      const partitionsOf = async (topic: string): Promise<number> =>
        (await this.admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions.length ?? 1;
      this.checkpointPartitions = await partitionsOf(this.settings.checkpointTopic);
      if (this.settings.statusTopic) this.statusPartitions = await partitionsOf(this.settings.statusTopic);
      await this.checkpoints.start();
      await this.consumer.connect();
      const topics = [this.settings.inputTopic, ...(this.settings.taskTopic ? [this.settings.taskTopic] : [])];
      await this.consumer.subscribe({ topics, fromBeginning: this.settings.fromBeginning });
      const run: ConsumerRunConfig = {
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.settings.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.eachBatch(payload),
      };
      // An outage is waited out, even one kafkajs gives up on; refused access is fatal.
      reviveAfterOutages(this.consumer, run, {
        what: 'consumer',
        log: this.log,
        stopping: () => this.state === 'STOPPING' || this.state === 'STOPPED' || this.state === 'FAILED',
        onFatal: (err) => void this.fail(err),
      });
      await this.consumer.run(run);
    } catch (err) {
      this.setState('FAILED');
      await this.disconnectQuietly();
      throw translateKafkaError(err, 'starting the processor');
    }
    this.setState('RUNNING');
    this.log.info(
      {
        topic: this.settings.inputTopic,
        groupId: this.settings.groupId,
        guarantee: this.settings.guarantee,
        kafkaClient: this.producers.name,
      },
      'processor running',
    );
  }

  /**
   * Stops consuming. Work in flight commits what it has reached (or aborts), the consumer leaves
   * its group so the next owner starts at once, then the sinks close. Bounded by shutdownTimeoutMs.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.state === 'STOPPED') return;
    const failed = this.state === 'FAILED';
    if (!failed) this.setState('STOPPING');
    for (const controller of this.inFlight) controller.abort(new Error('processor stopping'));
    this.stopSignal.abort(new Error('processor stopping'));
    const started = Date.now();
    try {
      await withDeadline(
        this.disconnectQuietly(),
        this.settings.shutdownTimeoutMs,
        () =>
          new SyncError('SYNC_TIMEOUT', `stop took longer than ${this.settings.shutdownTimeoutMs} ms`, {
            retriable: false,
          }),
      );
    } catch (err) {
      this.log.warn({ err }, 'processor did not stop in time; leaving the rest to the process exit');
    }
    if (!failed) this.setState('STOPPED');
    this.log.info({ ms: Date.now() - started }, 'processor stopped');
  }

  private async disconnectQuietly(): Promise<void> {
    const quietly = (what: string, step: () => Promise<unknown>) => () =>
      step().catch((err: unknown) => this.log.warn({ err, step: what }, 'error while disconnecting'));
    // The consumer leaves the group (after its work in flight returns) while the checkpoint
    // reader stops beside it: each waits out one fetch long-poll, so together they take one.
    await Promise.all([
      quietly('consumer', () => this.consumer.disconnect())(),
      quietly('checkpoints', () => this.checkpoints.stop())(),
    ]);
    // Then each step runs even when the one before it fails.
    for (const worker of this.workers.values()) await quietly('sink', () => worker.close())();
    await quietly('producers', () => this.producers.close())();
    await quietly('admin', () => this.admin.disconnect())();
  }

  /** A fatal error: stop consuming, report not ready, let the owner exit non-zero. */
  private async fail(err: unknown): Promise<void> {
    if (this.fatalError !== undefined) return;
    this.fatalError = err;
    this.log.error({ err }, 'processor stopped: fatal error');
    this.setState('FAILED');
    this.events.emit('fatal', err);
    await this.stop();
  }

  private setState(state: RuntimeState): void {
    this.state = state;
    this.events.emit('state', state);
  }

  private workerFor(topic: string, partition: number): PartitionWorker<I> {
    let worker = this.workers.get(`${topic}:${partition}`);
    if (worker) return worker;
    const { settings } = this;
    const key = checkpointKey(settings.groupId, topic, partition);
    // Task partitions use the checkpoint partitions after the input's, so the two rarely share one.
    const offset = topic === settings.inputTopic ? 0 : this.checkpointPartitions >> 1;
    const cpPartition = checkpointPartition(partition + offset, this.checkpointPartitions);
    const sinkSettings = {
      groupId: settings.groupId,
      inputTopic: topic,
      partition,
      outputTopic: settings.outputTopic,
      deadLetterTopic: settings.deadLetterTopic,
      checkpointTopic: settings.checkpointTopic,
      checkpointKey: key,
      checkpointPartition: cpPartition,
      // Under a rate limit each paced slice goes out as it is let through, not saved up into bursts.
      batchSize: this.pacer ? Math.min(settings.produceBatchSize, this.paceSlice) : settings.produceBatchSize,
      maxInFlight: settings.produceMaxInFlight,
      transactionTimeoutMs: settings.transactionTimeoutMs,
      producerUnansweredMs: settings.producerUnansweredMs,
    };
    const sink: PartitionSink =
      settings.guarantee === 'exactly_once'
        ? new TransactionalSink(this.producers, sinkSettings)
        : new AtLeastOnceSink(this.producers, sinkSettings, (topic, p, offset) =>
            this.consumer.commitOffsets([{ topic, partition: p, offset }]),
          );
    worker = new PartitionWorker<I>(partition, {
      processor: this.processor,
      sink,
      checkpoints: this.checkpoints,
      checkpointKey: key,
      checkpointPartition: cpPartition,
      checkpointTopic: settings.checkpointTopic,
      committedOffset: () => this.committedOffset(topic, partition),
      statusTopic: settings.statusTopic
        ? { topic: settings.statusTopic, partitions: this.statusPartitions }
        : undefined,
      taskTopic: settings.taskTopic,
      // The tasks about to be committed are mostly consumed here too (the group spreads the
      // task partitions): their partitions restore while this commit and the fetch run.
      onSpawning: () => this.prepareTaskPartitions(),
      pace: this.pacer ? (n, signal) => (this.pacer as RatePacer).take(n, signal) : undefined,
      settings: {
        retry: settings.retry,
        txnMaxRecords: settings.txnMaxRecords,
        txnMaxMs: settings.txnMaxMs,
        maxWave: MAX_WAVE,
        maxDeadLetterBytes: settings.maxDeadLetterBytes,
        // Under a rate limit, hand records over in tenth-of-a-second slices, so output is even.
        paceSlice: this.pacer ? this.paceSlice : undefined,
      },
      log: this.log.child({ topic, partition }),
      metrics: this.metrics,
      onProcessed: (event: ProcessedEvent) => {
        this.metrics?.triggersProcessed.inc({ outcome: event.outcome });
        this.metrics?.triggerExpandSeconds.observe({ outcome: event.outcome }, event.ms / 1000);
        this.events.emit('processed', event);
      },
    });
    this.workers.set(`${topic}:${partition}`, worker);
    return worker;
  }

  private prepareTaskPartitions(): void {
    const { taskTopic } = this.settings;
    if (!taskTopic || this.state !== 'RUNNING') return;
    for (const partition of this.taskPartitions) {
      this.workerFor(taskTopic, partition).prepare(this.generation, this.stopSignal.signal);
    }
  }

  private async committedOffset(topic: string, partition: number): Promise<string | undefined> {
    try {
      const [offsets] = await this.admin.fetchOffsets({ groupId: this.settings.groupId, topics: [topic] });
      const found = offsets?.partitions.find((p) => p.partition === partition);
      return found === undefined || Number(found.offset) < 0 ? undefined : found.offset;
    } catch (err) {
      throw translateKafkaError(err, 'reading the committed offset');
    }
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, resolveOffset, isRunning, isStale } = payload;
    if (this.fatalError !== undefined || this.state === 'STOPPING') return;
    const controller = new AbortController();
    this.inFlight.add(controller);
    // Heartbeats run on a timer, whatever the work produces: a sparse read that yields nothing
    // for a while must not be evicted from the group. A failed heartbeat (a rebalance) or a
    // stale batch gives the partition up promptly instead of holding the whole group back.
    const beat = setInterval(
      () => {
        if (!isRunning() || isStale()) {
          controller.abort(new Error('partition no longer ours'));
          return;
        }
        heartbeat().catch((err: unknown) => controller.abort(new Error(`heartbeat failed: ${messageOf(err)}`)));
      },
      Math.max(100, Math.floor(this.settings.heartbeatIntervalMs / 2)),
    );
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
      await this.workerFor(batch.topic, batch.partition).processBatch(messages, {
        generation: this.generation,
        signal: controller.signal,
        resolveOffset,
      });
    } catch (err) {
      if (errorKind(err) === 'fatal') void this.fail(err);
      else this.log.error({ err }, 'unexpected error in the consume loop');
    } finally {
      clearInterval(beat);
      this.inFlight.delete(controller);
    }
  }
}

/**
 * The output rate limit of one process: each take reserves the next slot of a virtual clock, so
 * all partitions together stay at the rate, and no burst is saved up while idle.
 */
export class RatePacer {
  private clock = 0;

  constructor(private readonly perSecond: number) {}

  async take(n: number, signal?: AbortSignal): Promise<void> {
    const now = Date.now();
    const start = Math.max(this.clock, now);
    this.clock = start + (n * 1000) / this.perSecond;
    if (start > now) await sleep(start - now, signal);
  }
}
