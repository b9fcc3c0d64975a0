import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Client } from 'cassandra-driver';
import type { Admin, Kafka } from 'kafkajs';
import { createEnrolmentSyncProcessor, type FanOutSettings, type SyncInput } from '../processors/enrolment-sync';
import { createSyncEventEncoder } from '../processors/enrolment-sync/sync-event';
import { createApp, hardenServer, startingUp } from './api/app';
import { createJwtAuthenticator } from './api/auth';
import { createHealthServer } from './api/health';
import { EventEmitter } from 'node:events';
import { connectCassandra, countingTracker, createCassandra } from './cassandra/client';
import { EnrolmentReader } from './cassandra/enrolments';
import type { Settings } from './config';
import { connectingToKafka, createKafka, translateKafkaError } from './kafka/client';
import { confluentFrame } from './kafka/codecs';
import type { KafkaClientName, ProducerClient, TransactionalProducer } from './kafka/ports';
import { createProducerClient } from './kafka/producers';
import { createRegistry, registerSchemas } from './kafka/registry';
import { StickyTriggerIds } from './kafka/sticky-trigger-ids';
import { createTriggerPublisher } from './kafka/trigger-publisher';
import type { Logger } from './observability/logger';
import { createMetrics, type Metrics } from './observability/metrics';
import { syncEventAvroType } from './schemas';
import { messageOf, SyncError } from './errors';
import { capYoungGeneration, limitOldGenerationGrowth } from './streams/heap';
import { StreamRuntime } from './streams/runtime';
import { StatusStore } from './streams/status-store';
import type { TriggerStatus } from './streams/status';
import { sleep } from './util/async';

export interface ServiceOptions {
  api: boolean;
  processor: boolean;
}

/**
 * The processor's young generation, per semi-space: Node 20's ceiling. Node 24 would grow it to
 * 64 MB during a long expansion, and peak RSS with it (docs/benchmarks.md, "Memory").
 */
const PROCESSOR_SEMI_SPACE_MB = 16;
/**
 * How far the processor's old generation grows past its live size before a full collection, by
 * Kafka client. With librdkafka little but our own records reaches the heap: at 1,000,000 users
 * V8's own heuristic (0) peaked at 319 MB, 35% at 226–245 MB for 6.3–6.9 CPU-s per 1M events,
 * and 20% at 227–255 MB for 7.1–8.9 (more full collections, no less memory). kafkajs promotes
 * several KB of encoder buffers per event, and a 20% limit nearly doubled its CPU per event
 * (docs/benchmarks.md, "Memory"), so it keeps V8's heuristic.
 */
const PROCESSOR_OLD_GROWTH_PERCENT: Record<KafkaClientName, number> = { confluent: 35, kafkajs: 0 };
let apiInstances = 0;
/**
 * The broker aborts an API transaction left open this long (a producer that died mid-send). A
 * send is answered or given up within API_DEPENDENCY_TIMEOUT_MS, so a minute is ample, as
 * kafkajs' default was.
 */
const API_TXN_TIMEOUT_MS = 60_000;

/**
 * The running product: the API, the processor, or both, sharing one Cassandra session.
 * stop() may be called any number of times and shares one promise; readiness turns 503 first,
 * then (after the drain delay) HTTP stops accepting and finishes the requests in flight, then the
 * processor leaves its group, then producers and Cassandra: HTTP closes before the clients it uses.
 */
export class EnrolmentSyncService {
  readonly metrics: Metrics;
  private kafka: Kafka;
  private cassandra: Client;
  private apiProducers: TransactionalProducer[] = [];
  private apiProducerClient: ProducerClient | undefined;
  private runtime: StreamRuntime<SyncInput> | undefined;
  private server: Server | undefined;
  private healthServer: Server | undefined;
  private status: StatusStore | undefined;
  private statusAdmin: Admin | undefined;
  private ready = false;
  /** Emits 'fatal' (the error) when the processor stopped for good: the process should exit non-zero. */
  readonly events = new EventEmitter();
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly settings: Readonly<Settings>,
    private readonly log: Logger,
  ) {
    this.metrics = createMetrics(undefined, true);
    this.kafka = createKafka(settings.kafka, log);
    this.cassandra = createCassandra(settings.cassandra, {
      requestTracker: countingTracker((outcome) => this.metrics.cassandraRequests.inc({ outcome })),
    });
  }

  get processorRuntime(): StreamRuntime<SyncInput> | undefined {
    return this.runtime;
  }

  /** The API's base URL once it listens. */
  get url(): string | undefined {
    const address = this.server?.address() as AddressInfo | null | undefined;
    return address ? `http://${this.settings.api.host}:${address.port}` : undefined;
  }

  /** Starts what `options` asks for; a start that fails has closed whatever it had opened. */
  async start(options: ServiceOptions): Promise<void> {
    try {
      await this.startParts(options);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startParts(options: ServiceOptions): Promise<void> {
    const { settings, log } = this;
    // The port first: a second instance started on a port already taken then fails before its
    // processor joins the group, where its coming and going would move the partitions twice
    // (each move fencing a running member's producers). /ready answers 503 until start() ends.
    if (options.api) await this.listenApi();
    else if (options.processor) await this.startHealthServer();
    await connectCassandra(this.cassandra, settings.cassandra.contactPoints);
    const reader = new EnrolmentReader(this.cassandra, settings.cassandra.keyspace, settings.processor, log);
    const registry = createRegistry(settings.registry);

    await this.requireTopics(options);
    // Trigger status, read back as a table: the processor asks it before expanding a batch
    // that may already be running, the API answers status queries from it.
    this.statusAdmin = this.kafka.admin();
    await this.statusAdmin.connect();
    this.status = new StatusStore(
      this.kafka,
      this.statusAdmin,
      settings.topics.status,
      log.child({ component: 'status' }),
      settings.processor.groupId,
      undefined,
      settings.processor.maxEventsPerSecond || undefined,
    );
    await this.status.start();
    const status = this.status;

    if (options.processor) {
      const type = syncEventAvroType();
      let frame: ((body: Buffer) => Buffer) | undefined;
      if (settings.processor.eventFormat === 'avro') {
        const { syncEventSchemaId } = await registerSchemas(registry, settings.topics);
        frame = (body) => confluentFrame(syncEventSchemaId, body);
      }
      const processor = createEnrolmentSyncProcessor({
        enrolments: reader,
        encode: createSyncEventEncoder(type, settings.processor.eventFormat, frame),
        defaults: {
          includeInactive: settings.processor.includeInactive,
          includeCompleted: settings.processor.includeCompleted,
        },
        registry,
        keyChunkSize: settings.processor.produceBatchSize,
        carriedEnrolmentsMaxAgeMs: settings.processor.carriedEnrolmentsMaxAgeMs,
        fanOut: settings.processor.fanOut ? await this.fanOutSettings() : undefined,
        running: { findRunning: (c, b, signal) => status.findRunning(c, b, signal, false) },
      });
      const p = settings.processor;
      capYoungGeneration(PROCESSOR_SEMI_SPACE_MB);
      limitOldGenerationGrowth(PROCESSOR_OLD_GROWTH_PERCENT[settings.kafka.client]);
      this.runtime = new StreamRuntime(
        this.kafka,
        await createProducerClient(settings.kafka, this.kafka, log),
        processor,
        {
          inputTopic: settings.topics.trigger,
          outputTopic: settings.topics.output,
          deadLetterTopic: settings.topics.deadLetter,
          checkpointTopic: settings.topics.checkpoints,
          taskTopic: settings.topics.tasks,
          statusTopic: settings.topics.status,
          maxEventsPerSecond: p.maxEventsPerSecond,
          groupId: p.groupId,
          guarantee: p.guarantee,
          produceBatchSize: p.produceBatchSize,
          produceMaxInFlight: p.produceMaxInFlight,
          partitionsConsumedConcurrently: p.partitionsConcurrently,
          sessionTimeoutMs: p.sessionTimeoutMs,
          heartbeatIntervalMs: p.heartbeatIntervalMs,
          txnMaxRecords: p.txnMaxRecords,
          txnMaxMs: p.txnMaxMs,
          transactionTimeoutMs: p.transactionTimeoutMs,
          // By then the broker has aborted the transaction, and every request has timed out.
          producerUnansweredMs: p.transactionTimeoutMs + settings.kafka.requestTimeoutMs,
          shutdownTimeoutMs: p.shutdownTimeoutMs,
          maxDeadLetterBytes: p.maxDeadLetterBytes,
          retry: p.retry,
          fromBeginning: true,
        },
        log.child({ component: 'processor' }),
        this.metrics,
      );
      this.runtime.events.on('fatal', (err: unknown) => {
        this.ready = false;
        this.events.emit('fatal', err);
      });
      await this.runtime.start();
    }

    if (options.api) {
      // Transactional, so a trigger whose request gave up is aborted, never published later. One
      // id per producer of this process: two API instances must never fence each other. The
      // producers come from the adapter KAFKA_CLIENT names, as the processor's do.
      const instance = `${settings.kafka.clientId}.api.${hostname()}.${process.pid}.${++apiInstances}`;
      const client = await createProducerClient(settings.kafka, this.kafka, log);
      this.apiProducerClient = client;
      const transactionalIds = new Map<TransactionalProducer, string>();
      const apiProducer = async (transactionalId: string): Promise<TransactionalProducer> => {
        const producer = client.transactionalProducer({ transactionalId, transactionTimeoutMs: API_TXN_TIMEOUT_MS });
        // Connects and fences whatever an earlier producer of the id left open.
        await producer.open();
        transactionalIds.set(producer, transactionalId);
        return producer;
      };
      // A producer whose send failed is replaced (see TriggerPublisherOptions.renew); the new one
      // takes over its transactional id, which fences the old epoch.
      const renew = async (broken: TransactionalProducer): Promise<TransactionalProducer> => {
        const transactionalId = transactionalIds.get(broken) as string;
        if (this.stopping) return broken;
        let fresh: TransactionalProducer;
        try {
          fresh = await apiProducer(transactionalId);
        } catch (err) {
          log.warn({ err, transactionalId }, 'could not renew an API producer; keeping the old one');
          return broken;
        }
        if (this.stopping) {
          // stop() has closed the producers it knew of; this one is ours to close.
          transactionalIds.delete(fresh);
          await fresh.close();
          return broken;
        }
        this.apiProducers = this.apiProducers.map((p) => (p === broken ? fresh : p));
        transactionalIds.delete(broken);
        await broken.close();
        log.info({ transactionalId }, 'API producer renewed after a failed send');
        return fresh;
      };
      const opened = await Promise.allSettled(
        Array.from({ length: settings.api.publishProducers }, (_, i) => apiProducer(`${instance}.${i}`)),
      );
      this.apiProducers = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      const refused = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      // The ones that did open go to stop() through apiProducers, so a failed start leaves none open.
      if (refused) throw refused.reason;
      const authenticate = settings.api.jwt ? await createJwtAuthenticator(settings.api.jwt) : undefined;
      if (!authenticate) log.warn({ host: settings.api.host }, 'API authentication is off');
      const [triggerMeta] = (
        await (this.statusAdmin as Admin).fetchTopicMetadata({ topics: [settings.topics.trigger] })
      ).topics;
      const triggerIds = new StickyTriggerIds({
        triggerPartitions: triggerMeta?.partitions.length ?? 1,
        statusPartitions: status.partitionCount,
        windowMs: settings.api.stickyPartitionMs,
      });
      const sticky = settings.api.stickyPartitionMs > 0;
      const app = createApp({
        findEnrolments: (c, b, u) => reader.findByKeys(c, b, u),
        newTriggerId: sticky ? () => triggerIds.next() : undefined,
        publishTrigger: createTriggerPublisher(this.apiProducers, settings.topics.trigger, {
          maxQueued: settings.api.publishQueueMax,
          lingerMs: settings.api.publishLingerMs,
          renew,
          onSend: ({ triggers, outcome, seconds }) => {
            this.metrics.apiTriggersPerSend.observe({ outcome }, triggers);
            this.metrics.apiSendSeconds.observe({ outcome }, seconds);
          },
          status: { topic: settings.topics.status, partitions: status.partitionCount },
          partitionOf: sticky ? (id) => triggerIds.partitionOf(id) : undefined,
        }),
        getStatus: (triggerId) => status.get(triggerId),
        listStatus: (query) => status.list(query),
        policy: {
          includeInactive: settings.processor.includeInactive,
          includeCompleted: settings.processor.includeCompleted,
        },
        maxUsersPerRequest: settings.api.maxUsersPerRequest,
        bodyLimitBytes: settings.api.bodyLimitBytes,
        dependencyTimeoutMs: settings.api.dependencyTimeoutMs,
        maxInFlight: settings.api.maxInFlight,
        retryAfterSeconds: settings.api.retryAfterSeconds,
        authenticate,
        log: log.child({ component: 'api' }),
        metrics: this.metrics,
        isReady: () => this.isReady(),
      });
      const server = this.server as Server;
      server.removeAllListeners('request');
      server.on('request', app);
    }
    this.ready = true;
  }

  private async listenApi(): Promise<void> {
    const { host, port, retryAfterSeconds } = this.settings.api;
    const server = createServer(startingUp(retryAfterSeconds));
    hardenServer(server);
    await listen(server, host, port, 'API', 'API_PORT, API_HOST');
    this.server = server;
    this.log.info({ url: this.url }, 'API listening');
  }

  /** Tasks per scanned batch: by default twice the task topic's partitions, so every member gets some. */
  private async fanOutSettings(): Promise<FanOutSettings> {
    const admin = this.statusAdmin as Admin;
    const [meta] = (await admin.fetchTopicMetadata({ topics: [this.settings.topics.tasks] })).topics;
    const partitions = meta?.partitions.length ?? 1;
    const { fanOutTasks, scanConcurrency } = this.settings.processor;
    return { tasks: fanOutTasks > 0 ? fanOutTasks : partitions * 2, partitions, rangesPerTask: scanConcurrency };
  }

  /** The status of a trigger, as any instance sees it (after reading everything written for it). */
  triggerStatus(triggerId: string): Promise<TriggerStatus | undefined> {
    if (!this.status) throw new Error('service not started');
    return this.status.get(triggerId);
  }

  private isReady(): boolean {
    return this.ready && (this.runtime === undefined || this.runtime.ready);
  }

  /** The base URL of the processor-only health endpoints once they listen. */
  get healthUrl(): string | undefined {
    const address = this.healthServer?.address() as AddressInfo | null | undefined;
    return address ? `http://${this.settings.processor.healthHost}:${address.port}` : undefined;
  }

  private async startHealthServer(): Promise<void> {
    const { healthHost, healthPort } = this.settings.processor;
    const server = createHealthServer({
      isReady: () => this.isReady(),
      reason: () => (this.runtime?.failure === undefined ? undefined : messageOf(this.runtime.failure)),
      metrics: this.metrics,
    });
    await listen(server, healthHost, healthPort, 'health endpoints', 'PROCESSOR_PORT, PROCESSOR_HOST');
    this.healthServer = server;
    this.log.info({ url: this.healthUrl }, 'health endpoints listening');
  }

  /** A missing topic is a set-up problem with a known fix: say so, rather than a broker error. */
  private async requireTopics(options: ServiceOptions): Promise<void> {
    const { topics } = this.settings;
    const needed = options.processor
      ? [topics.trigger, topics.output, topics.deadLetter, topics.checkpoints, topics.tasks, topics.status]
      : [topics.trigger, topics.status];
    const admin = this.kafka.admin();
    let existing: Set<string>;
    try {
      await admin.connect();
      existing = new Set(await admin.listTopics());
    } catch (err) {
      throw translateKafkaError(err, connectingToKafka(this.settings.kafka.brokers));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    const missing = needed.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      throw new SyncError(
        'SYNC_CONFIG',
        `topic(s) ${missing.join(', ')} do not exist; create them with \`enrolment-sync migrate\` (or \`make migrate\`)`,
        { retriable: false },
      );
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.ready = false;
    const { drainDelayMs, shutdownTimeoutMs } = this.settings.api;
    const steps: Array<[string, () => Promise<unknown>]> = [
      // Load balancers see readiness 503 and stop sending before the server stops accepting.
      ['drain', async () => this.server && drainDelayMs > 0 && sleep(drainDelayMs)],
      ['http', async () => this.server && closeServer(this.server, shutdownTimeoutMs)],
      ['processor', async () => this.runtime?.stop()],
      [
        'health',
        async () => this.healthServer && new Promise<void>((resolve) => this.healthServer?.close(() => resolve())),
      ],
      ['api producers', async () => Promise.all(this.apiProducers.map((p) => p.close()))],
      ['api producer client', async () => this.apiProducerClient?.close()],
      ['status', async () => this.status?.stop()],
      ['status admin', async () => this.statusAdmin?.disconnect()],
      ['cassandra', async () => this.cassandra.shutdown()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.log.warn({ err, step: name }, 'error while stopping');
      }
    }
  }
}

/** Listens on host:port; a port taken (or refused) is a configuration error naming its variables. */
function listen(server: Server, host: string, port: number, what: string, variables: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new SyncError(
          'SYNC_CONFIG',
          `${what} cannot listen on ${host}:${port}: ${err.message}; another instance may have it (${variables})`,
          { retriable: false, cause: err },
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
}

/** Stops accepting, lets requests in flight finish for up to `timeoutMs`, then cuts what is left. */
function closeServer(server: Server, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
