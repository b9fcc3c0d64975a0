import { KafkaConsumer, Producer, type LibrdKafkaError, type MessageHeader } from '@confluentinc/kafka-javascript';
import type { Settings } from '../config';
import type { Logger } from '../observability/logger';
import { sleep } from '../util/async';
import { readTlsMaterial } from '../util/tls';
import { SyncError } from '../errors';
import { translateKafkaError } from './client';
import type {
  IdempotentProducer,
  ProducerClient,
  RecordHeaders,
  TopicRecords,
  TransactionalProducer,
  TransactionalProducerOptions,
} from './ports';

/** librdkafka's "local queue full": the producer holds queue.buffering.max.messages unsent. */
const ERR_QUEUE_FULL = -184;

/**
 * Bounds of librdkafka's producer queue (see producerConfig), per producer: 5,000 of our 425-byte
 * events (the count binds first; 4 MiB is the cap for larger records), 200 ms of each one's share
 * when four producers write 100,000 events/s. librdkafka copies every record it is handed and
 * holds the copy until it is delivered (and, where reports are asked for, until its report is
 * served), and fan-out runs up to 4 transactional producers at once: at 20,000 / 16 MiB those
 * copies were 22 MB of the processor's malloc heap at its 1,000,000-user peak. 5,000 / 4 MiB
 * measured 191–222 MB peak RSS against 213–229, at the same CPU per event, and a single producer
 * (SYNC_FAN_OUT=false) ran no slower (docs/benchmarks.md, "Memory (4)"). A record with a report
 * to serve counts until it is served, so every producer with these bounds polls (see the
 * transactional open()), and enqueue() polls at once when the queue is full.
 */
const PRODUCER_QUEUE_KBYTES = 4 * 1024;
const PRODUCER_QUEUE_MESSAGES = 5_000;
/** How often a producer serves its delivery reports when its queue does not fill first, in ms. */
const DELIVERY_POLL_MS = 100;

/**
 * librdkafka properties shared by our producers. The partitioner is murmur2 over the key, as
 * the Java client (and our kafkajs adapter) partitions. Compression is KAFKA_COMPRESSION's (lz4
 * by default, which librdkafka does natively); the runtime's own kafkajs readers decode it with
 * the codecs src/kafka/compression-codecs.ts registers.
 */
function producerConfig(settings: Settings['kafka']): Record<string, string | number | boolean> {
  const config: Record<string, string | number | boolean> = {
    'bootstrap.servers': settings.brokers.join(','),
    'client.id': settings.clientId,
    'socket.connection.setup.timeout.ms': settings.connectionTimeoutMs,
    'request.timeout.ms': settings.requestTimeoutMs,
    'enable.idempotence': true,
    acks: -1,
    partitioner: 'murmur2_random',
    'compression.codec': settings.compression,
    'linger.ms': 20,
    'batch.size': 1024 * 1024,
    // librdkafka's queue lives outside the V8 heap and by default may hold 100,000 records or
    // 1 GiB per producer; with one transactional producer per partition expanded, it was most
    // of the processor's RSS growth (docs/benchmarks.md, "Memory"). A full queue makes enqueue()
    // wait, which is the backpressure the reader needs.
    'queue.buffering.max.kbytes': PRODUCER_QUEUE_KBYTES,
    'queue.buffering.max.messages': PRODUCER_QUEUE_MESSAGES,
    'allow.auto.create.topics': false,
    // Log lines as events: how connect() learns why a secured connection was refused.
    event_cb: true,
    ...securityConfig(settings),
  };
  return config;
}

/** TLS and SASL as librdkafka spells them. PEM material is handed over inline, as kafkajs gets it. */
function securityConfig(settings: Settings['kafka']): Record<string, string> {
  const out: Record<string, string> = {};
  const { tls, sasl } = settings;
  if (tls) {
    const material = readTlsMaterial(tls, 'KAFKA');
    if (material.ca) out['ssl.ca.pem'] = material.ca.map(String).join('\n');
    if (material.cert) out['ssl.certificate.pem'] = String(material.cert);
    if (material.key) out['ssl.key.pem'] = String(material.key);
    if (material.passphrase !== undefined) out['ssl.key.password'] = material.passphrase;
  }
  if (sasl) {
    out['sasl.mechanisms'] = sasl.mechanism.toUpperCase();
    out['sasl.username'] = sasl.username;
    out['sasl.password'] = sasl.password;
  }
  if (tls || sasl) out['security.protocol'] = tls ? (sasl ? 'sasl_ssl' : 'ssl') : 'sasl_plaintext';
  return out;
}

function headersOf(headers: RecordHeaders | undefined): MessageHeader[] | undefined {
  if (headers === undefined) return undefined;
  const out: MessageHeader[] = [];
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) out.push({ [key]: item });
  }
  return out.length > 0 ? out : undefined;
}

function bufferOf(value: Buffer | string | null): Buffer | null {
  return value === null || Buffer.isBuffer(value) ? value : Buffer.from(value);
}

/** Calls a librdkafka callback-style method as a promise. */
function call(run: (done: (err: LibrdKafkaError | null | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    run((err) => (err ? reject(err) : resolve()));
  });
}

/** The binding's error type, made from a librdkafka error code as its own produce() throws it. */
// The package's index exports no constructor for it; lib/error is where produce() gets its errors.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const librdkafkaError = require('@confluentinc/kafka-javascript/lib/error') as {
  create(code: number): LibrdKafkaError;
};

/**
 * The binding's produceBatch, added by patches/@confluentinc+kafka-javascript+1.10.1.patch:
 * records for one topic, each with its key (or null) and value, in one native call
 * (rd_kafka_produce_batch). Returns [queued, errorCode]: records [0, queued) are in the queue,
 * and errorCode is that of the first that is not (0 when all are). A full queue leaves every later
 * record out too.
 */
interface NativeBatchProduce {
  produceBatch(topic: string, values: Buffer[], keys: Array<Buffer | null>): [number, number];
}

/** The producer's native handle if it has produceBatch (a build of the unpatched binding has not). */
export function batchProduceOf(producer: Producer): NativeBatchProduce | undefined {
  const native = (producer as unknown as { _client?: Partial<NativeBatchProduce> })._client;
  return typeof native?.produceBatch === 'function' ? (native as NativeBatchProduce) : undefined;
}

/**
 * Records per produceBatch call. One N-API call per record (produce()) cost the main thread about
 * 1.3 µs a record, most of it the call and its argument conversions rather than librdkafka's
 * enqueue (docs/benchmarks.md, "One native call per batch"); a thousand keep the arrays small.
 */
const PRODUCE_BATCH_RECORDS = 1000;

/** How many times in a row a full queue may free nothing before enqueue gives up (~30 s). */
const QUEUE_FULL_TRIES = 6000;

/**
 * Serves the delivery reports of a full queue at once, and waits only if that freed nothing last
 * time. Delivered records count against the queue until their reports are served; waiting for
 * the interval poll capped a producer at the queue's 5,000 records per 100 ms (docs/benchmarks.md,
 * "A full queue served at once").
 */
async function drainFullQueue(producer: Producer, triesWithoutProgress: number): Promise<void> {
  producer.poll();
  if (triesWithoutProgress > 0) await sleep(5);
}

/** Queues `values` (with `keys`) of one topic through the native batch call, as queue room allows. */
async function produceBatch(
  producer: Producer,
  native: NativeBatchProduce,
  topic: string,
  values: Buffer[],
  keys: Array<Buffer | null>,
): Promise<void> {
  if (!producer.isConnected()) throw new Error('Producer not connected');
  let from = 0;
  for (let triesWithoutProgress = 0; ;) {
    const [queued, code] =
      from === 0
        ? native.produceBatch(topic, values, keys)
        : native.produceBatch(topic, values.slice(from), keys.slice(from));
    if (code === 0) return;
    if (queued > 0) triesWithoutProgress = 0;
    if (code !== ERR_QUEUE_FULL || triesWithoutProgress > QUEUE_FULL_TRIES) throw librdkafkaError.create(code);
    from += queued;
    await drainFullQueue(producer, triesWithoutProgress++);
  }
}

/**
 * Hands records to librdkafka's queue; it batches, compresses and sends them from its own
 * thread. A full queue is waited out (the queue drains meanwhile), so memory stays bounded.
 * Records with nothing of their own but a key and a value (every sync event) go in native
 * batches; the rest (an explicit partition, headers, a timestamp, a tombstone) one by one.
 */
async function enqueue(producer: Producer, batches: readonly TopicRecords[]): Promise<void> {
  const native = batchProduceOf(producer);
  for (const { topic, messages } of batches) {
    let values: Buffer[] = [];
    let keys: Array<Buffer | null> = [];
    const produceBatched = async (): Promise<void> => {
      if (native === undefined || values.length === 0) return;
      await produceBatch(producer, native, topic, values, keys);
      values = [];
      keys = [];
    };
    for (const record of messages) {
      const headers = headersOf(record.headers);
      const value = bufferOf(record.value);
      const key = record.key === undefined ? null : bufferOf(record.key);
      if (
        native !== undefined &&
        value !== null &&
        headers === undefined &&
        record.timestamp === undefined &&
        record.partition === undefined
      ) {
        values.push(value);
        keys.push(key);
        if (values.length === PRODUCE_BATCH_RECORDS) await produceBatched();
        continue;
      }
      await produceBatched();
      const timestamp = record.timestamp === undefined ? null : Number(record.timestamp);
      for (let attempt = 0; ; attempt++) {
        try {
          producer.produce(topic, record.partition ?? null, value, key, timestamp, undefined, headers);
          break;
        } catch (err) {
          if ((err as { code?: unknown }).code !== ERR_QUEUE_FULL || attempt > QUEUE_FULL_TRIES) throw err;
          await drainFullQueue(producer, attempt);
        }
      }
    }
    await produceBatched();
  }
}

/** librdkafka's log lines (facility FAIL) for a login or TLS handshake the broker refused. */
const SECURITY_FAILURE =
  /SASL authentication error|SSL handshake failed|alert (bad certificate|certificate required|unknown ca)/;

interface LibrdKafkaLog {
  severity: number;
  fac: string;
  message: string;
}

/**
 * A refused login or client certificate is not waited out: librdkafka retries it until the
 * connect times out and then says only "broker transport failure". Its log line names the cause
 * (it needs event_cb, see producerConfig); the connect fails with it, in the words of our TLS/SASL
 * variables, as soon as the attempt under way has ended (see connect).
 */
function securityFailure(message: string): unknown {
  if (/alert (bad certificate|certificate required|unknown ca)/.test(message)) {
    return new SyncError(
      'SYNC_TLS',
      `TLS with Kafka failed: the broker refused our client certificate (${message}); check KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE`,
      { retriable: false },
    );
  }
  return new Error(message);
}

/** How long a connect may take in all (librdkafka keeps trying a broker that is down meanwhile). */
const CONNECT_TIMEOUT_MS = 30000;
/** What one connect attempt may take beyond the connection timeout: the metadata request it ends with. */
const CONNECT_ATTEMPT_MARGIN_MS = 1000;
/** librdkafka's codes for a connect attempt that ran out of time: worth another attempt. */
const CONNECT_TIMED_OUT = new Set([-195, -185]);

/**
 * librdkafka's connect ends with a metadata request that cannot be cancelled: refused, it went on
 * for its whole timeout (30 s), and a disconnect meanwhile only waited for it (the binding holds
 * the client's lock), so a process could not exit for 30 s after a refused login. The first
 * attempt therefore lasts at most the connection timeout plus CONNECT_ATTEMPT_MARGIN_MS; one that
 * times out is followed by one twice as long (a slow broker on a busy machine still gets the time
 * it needs), until CONNECT_TIMEOUT_MS. A refusal ends the loop; the connect then rejects once
 * the attempt under way has ended (within its bound): a failed connect leaves nothing running,
 * and the library has let go of its connections itself, as after any failed connect.
 */
async function connect(client: Producer | KafkaConsumer, settings: Settings['kafka'], log: Logger): Promise<void> {
  // Both clients emit event.error and event.log; the typings' event unions just do not overlap.
  const events = client as unknown as NodeJS.EventEmitter;
  events.on('event.error', (err: LibrdKafkaError) => log.debug({ err }, 'librdkafka error event'));
  let refuse: (err: unknown) => void = () => undefined;
  const refused = new Promise<never>((_, reject) => (refuse = reject));
  refused.catch(() => undefined);
  const onLog = (entry: LibrdKafkaLog): void => {
    if (entry.fac === 'FAIL' && SECURITY_FAILURE.test(entry.message)) refuse(securityFailure(entry.message));
  };
  events.on('event.log', onLog);
  const deadline = Date.now() + CONNECT_TIMEOUT_MS;
  try {
    for (let bound = settings.connectionTimeoutMs + CONNECT_ATTEMPT_MARGIN_MS; ; bound *= 2) {
      const timeout = Math.max(1, Math.min(bound, deadline - Date.now()));
      const attempt = new Promise<void>((resolve, reject) => {
        client.connect({ timeout }, (err) => (err ? reject(err) : resolve()));
      });
      try {
        return await Promise.race([attempt, refused]);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number' && CONNECT_TIMED_OUT.has(code) && Date.now() < deadline) continue;
        await attempt.catch(() => undefined);
        throw err;
      }
    }
  } finally {
    events.removeListener('event.log', onLog);
  }
}

/** Never rejects. A producer first flushes what it holds, for at most 2 s (the records of an open transaction are void anyway). */
function disconnect(client: Producer | KafkaConsumer): Promise<void> {
  return new Promise((resolve) => {
    // A client whose connect failed has already let go of its connections, and a producer's
    // disconnect would throw ("Producer not connected" from its flush), hiding the real error.
    if (!client.isConnected()) return resolve();
    try {
      if (client instanceof Producer) client.disconnect(2000, () => resolve());
      else client.disconnect(() => resolve());
    } catch {
      resolve();
    }
  });
}

/**
 * The transactional id is per input partition (EOS v1), as with kafkajs. librdkafka's
 * sendOffsetsToTransaction wants a consumer for the group's metadata: the client's
 * `groupConsumer` is one that never joins the group, so the metadata carries the group id with
 * no generation or member, which the broker accepts for a transactional offset commit just as it
 * accepts kafkajs's older request that carries no generation at all.
 */
class ConfluentTransactionalProducer implements TransactionalProducer {
  private producer: Producer | undefined;
  private active = false;

  constructor(
    private readonly client: ConfluentProducerClient,
    private readonly options: TransactionalProducerOptions,
  ) {}

  get inTransaction(): boolean {
    return this.active;
  }

  private get id(): string {
    return this.options.transactionalId;
  }

  private get current(): Producer {
    if (!this.producer) throw translateKafkaError(new Error('producer not open'), this.id);
    return this.producer;
  }

  async open(): Promise<void> {
    const producer = new Producer({
      ...producerConfig(this.client.settings),
      'transactional.id': this.id,
      'transaction.timeout.ms': this.options.transactionTimeoutMs,
      // Nothing here reads a delivered record's report (a refused record fails the commit), so
      // librdkafka frees delivered records on its own threads instead of queueing a report for
      // the main thread's poll: 0.25 s less main-thread CPU per 1,000,000 events
      // (docs/benchmarks.md, "One native call per batch").
      'delivery.report.only.error': true,
    });
    try {
      await connect(producer, this.client.settings, this.client.log);
    } catch (err) {
      // A failed connect lets go of its connections itself (see connect).
      throw translateKafkaError(err, `fencing ${this.id}`);
    }
    try {
      // A refused record's report, and librdkafka's events, still wait for a poll; with every
      // report queued (before delivery.report.only.error), an unpolled queue only emptied at
      // commit, and a transaction larger than the queue waited on a full queue for good.
      producer.setPollInterval(DELIVERY_POLL_MS);
      // InitProducerId: fences every earlier producer of the id and aborts what it left open.
      await call((done) => producer.initTransactions(this.client.settings.requestTimeoutMs, done));
    } catch (err) {
      await disconnect(producer);
      throw translateKafkaError(err, `fencing ${this.id}`);
    }
    this.producer = producer;
  }

  async begin(): Promise<void> {
    const producer = this.current;
    try {
      await call((done) => producer.beginTransaction(done));
    } catch (err) {
      throw translateKafkaError(err, `beginning a transaction of ${this.id}`);
    }
    this.active = true;
  }

  async send(batches: readonly TopicRecords[]): Promise<void> {
    try {
      await enqueue(this.current, batches);
    } catch (err) {
      throw translateKafkaError(err, `produce to ${batches.map((b) => b.topic).join(',')}`);
    }
  }

  async flush(): Promise<void> {
    const producer = this.current;
    try {
      // Delivery of everything queued; a record the broker refused makes the commit fail later.
      await call((done) => producer.flush(this.client.settings.requestTimeoutMs, done));
    } catch (err) {
      throw translateKafkaError(err, `flushing a transaction of ${this.id}`);
    }
  }

  async sendOffsets(groupId: string, topic: string, partition: number, offset: string): Promise<void> {
    const producer = this.current;
    try {
      const consumer = await this.client.groupConsumer(groupId);
      const offsets = [{ topic, partition, offset: Number(offset) }];
      await call((done) =>
        producer.sendOffsetsToTransaction(offsets, consumer, this.client.settings.requestTimeoutMs, done),
      );
    } catch (err) {
      throw translateKafkaError(err, `sending offsets of ${this.id}`);
    }
  }

  async commit(): Promise<void> {
    const producer = this.current;
    try {
      // Flushes every record queued in the transaction first; a record the broker refused fails it.
      await this.untilDecided((timeout, done) => producer.commitTransaction(timeout, done));
    } catch (err) {
      // The transaction stays ours to abort.
      throw translateKafkaError(err, `committing a transaction of ${this.id}`);
    }
    this.active = false;
  }

  async abort(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    const producer = this.current;
    try {
      await this.untilDecided((timeout, done) => producer.abortTransaction(timeout, done));
    } catch (err) {
      throw translateKafkaError(err, `aborting a transaction of ${this.id}`);
    }
  }

  /**
   * A commit or abort that librdkafka reports as retriable (it timed out, the coordinator was
   * restarting) is still under way inside librdkafka, and the documented remedy is to make the
   * same call again: its result is the outcome. Giving up at the first timeout, as we did, left
   * the commit running: the abort that followed was refused ("Conflicting commit_transaction API
   * call is already in progress"), the producer was replaced and its transaction done again. In
   * the Kafka outage test, asking again let the commit through once the broker was back, with
   * nothing redone. Calls are repeated until the transaction timeout, by when the broker has
   * decided the transaction either way.
   */
  private async untilDecided(
    end: (timeout: number, done: (err: LibrdKafkaError | null | undefined) => void) => void,
  ): Promise<void> {
    const { requestTimeoutMs } = this.client.settings;
    const deadline = Date.now() + this.options.transactionTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const timeout = Math.max(1000, Math.min(requestTimeoutMs, deadline - Date.now()));
      try {
        await call((done) => end(timeout, done));
        return;
      } catch (err) {
        const rd = err as Partial<LibrdKafkaError>;
        const again = rd.isRetriable === true && rd.isTxnRequiresAbort !== true && rd.isFatal !== true;
        if (!again || Date.now() >= deadline) throw err;
        this.client.log.info({ err, attempt, transactionalId: this.id }, 'transaction not decided yet; asking again');
        await sleep(Math.min(100 * attempt, 1000));
      }
    }
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    this.active = false;
    if (producer) await disconnect(producer);
  }
}

/** librdkafka's "timed out": a flush whose wait ended with records still outstanding. */
const ERR_TIMED_OUT = -185;

/**
 * At-least-once: send resolves when librdkafka has delivered every record of it (acks=all), and
 * enqueue only queues records, as a transaction's records are queued until its commit.
 *
 * Not by a delivery report per record: the binding turns each into a JavaScript object and a
 * callback on the main thread, which made at-least-once cost more than twice the CPU of
 * exactly-once (docs/benchmarks.md, "CPU per event with librdkafka"). librdkafka reports only
 * failed records here (delivery.report.only.error), and send and flush wait for a flush of
 * librdkafka's that began after they were called: when it ends, every record queued before was
 * delivered or failed, and a failure's report was dispatched before its completion (see
 * `flushed`). Calls that overlap share one flush at a time, so at most one libuv worker waits per
 * producer; librdkafka sends at once, ignoring linger.ms, while it flushes, which is why the sink
 * enqueues and flushes once per commit rather than once per send.
 */
class ConfluentIdempotentProducer implements IdempotentProducer {
  private producer: Producer | undefined;
  /**
   * The sends and flushes waiting, each with the first failure reported meanwhile. A report
   * does not say whose record failed, so it fails every call waiting then: the failed record's
   * own is among them, and a call failed too many is redone, never lost.
   */
  private readonly waiting = new Set<{ failure?: LibrdKafkaError }>();
  /** A failure reported while nothing waited (a record only enqueued): the next call's. */
  private unclaimed: LibrdKafkaError | undefined;
  private flushing: Promise<void> | undefined;
  /** The flush to start when the running one ends, shared by the calls that came meanwhile. */
  private next: Promise<void> | undefined;

  constructor(private readonly client: ConfluentProducerClient) {}

  async open(): Promise<void> {
    if (this.producer) return;
    const producer = new Producer({
      ...producerConfig(this.client.settings),
      dr_cb: true,
      'delivery.report.only.error': true,
    });
    producer.on('delivery-report', (err) => {
      if (!err) return;
      if (this.waiting.size === 0) this.unclaimed ??= err;
      for (const call of this.waiting) call.failure ??= err;
    });
    try {
      await connect(producer, this.client.settings, this.client.log);
    } catch (err) {
      throw translateKafkaError(err, 'connecting the producer');
    }
    // A failed record's report reaches JavaScript when polled (a flush polls too).
    producer.setPollInterval(DELIVERY_POLL_MS);
    this.producer = producer;
  }

  async enqueue(batches: readonly TopicRecords[]): Promise<void> {
    const what = `produce to ${batches.map((b) => b.topic).join(',')}`;
    const producer = this.producer;
    if (!producer) throw translateKafkaError(new Error('producer not open'), what);
    try {
      await enqueue(producer, batches);
    } catch (err) {
      throw translateKafkaError(err, what);
    }
  }

  async send(batches: readonly TopicRecords[]): Promise<void> {
    await this.acknowledged(`produce to ${batches.map((b) => b.topic).join(',')}`, (producer) =>
      enqueue(producer, batches),
    );
  }

  flush(): Promise<void> {
    return this.acknowledged('flushing the producer', async () => undefined);
  }

  private async acknowledged(what: string, before: (producer: Producer) => Promise<void>): Promise<void> {
    const producer = this.producer;
    if (!producer) throw translateKafkaError(new Error('producer not open'), what);
    const call: { failure?: LibrdKafkaError } = { failure: this.unclaimed };
    this.unclaimed = undefined;
    this.waiting.add(call);
    try {
      await before(producer);
      await this.flushed(producer);
      if (call.failure !== undefined) throw call.failure;
    } catch (err) {
      throw translateKafkaError(err, what);
    } finally {
      this.waiting.delete(call);
    }
  }

  /** Resolves once a flush that started after this call has ended with nothing outstanding. */
  private flushed(producer: Producer): Promise<void> {
    if (!this.flushing) {
      this.flushing = this.flushOnce(producer).finally(() => (this.flushing = undefined));
      return this.flushing;
    }
    this.next ??= this.flushing
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.flushed(producer);
      });
    return this.next;
  }

  private async flushOnce(producer: Producer): Promise<void> {
    for (;;) {
      try {
        await call((done) => producer.flush(this.client.settings.requestTimeoutMs, done));
        break;
      } catch (err) {
        // Records still in flight (a broker down): librdkafka delivers or fails each within
        // message.timeout.ms, which is what a send waits for, as with a report per record.
        if ((err as { code?: unknown }).code !== ERR_TIMED_OUT || this.producer !== producer) throw err;
      }
    }
    // The flush's completion and a failed record's report both reach the event loop through
    // uv_async handles, the report first but served in the same pass, maybe after the flush's
    // callback; setImmediate runs after that pass.
    await new Promise((resolve) => setImmediate(resolve));
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    if (producer) await disconnect(producer);
  }
}

/**
 * The @confluentinc/kafka-javascript adapter (librdkafka, native API): records are encoded,
 * batched and compressed in native code, off the event loop and the JavaScript heap.
 */
class ConfluentProducerClient implements ProducerClient {
  readonly name = 'confluent';
  private readonly consumers = new Map<string, Promise<KafkaConsumer>>();

  constructor(
    readonly settings: Settings['kafka'],
    readonly log: Logger,
  ) {}

  transactionalProducer(options: TransactionalProducerOptions): TransactionalProducer {
    return new ConfluentTransactionalProducer(this, options);
  }

  idempotentProducer(): IdempotentProducer {
    return new ConfluentIdempotentProducer(this);
  }

  /** A consumer of `groupId` that is connected but never subscribes: only its group metadata is used. */
  groupConsumer(groupId: string): Promise<KafkaConsumer> {
    let consumer = this.consumers.get(groupId);
    if (!consumer) {
      const created = new KafkaConsumer(
        {
          'bootstrap.servers': this.settings.brokers.join(','),
          'client.id': `${this.settings.clientId}.offsets`,
          'group.id': groupId,
          'enable.auto.commit': false,
          event_cb: true,
          ...securityConfig(this.settings),
        },
        {},
      );
      consumer = connect(created, this.settings, this.log).then(() => created);
      // A failed connect is not cached: the next commit tries again.
      consumer.catch(() => this.consumers.delete(groupId));
      this.consumers.set(groupId, consumer);
    }
    return consumer;
  }

  async close(): Promise<void> {
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    for (const pending of consumers) {
      const consumer = await pending.catch(() => undefined);
      if (consumer) await disconnect(consumer);
    }
  }
}

export function confluentProducerClient(settings: Settings['kafka'], log: Logger): ProducerClient {
  return new ConfluentProducerClient(settings, log);
}
