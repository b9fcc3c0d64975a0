import type { SyncTrigger } from '../../processors/enrolment-sync/trigger';
import { SyncError } from '../errors';
import { triggerAvroType } from '../schemas';
import { avroProblems } from './codecs';
import { translateKafkaError } from './client';
import type { IdempotentProducer, ProducerRecord, TopicRecords, TransactionalProducer } from './ports';
import { statusKey, statusMessage } from '../streams/status';

/**
 * Publishes one trigger. With a `signal`, the caller may give up: a trigger given up on is never
 * published later (see createTriggerPublisher), and the promise rejects with SYNC_TIMEOUT.
 */
export type PublishTrigger = (trigger: SyncTrigger, options?: { signal?: AbortSignal }) => Promise<void>;

export interface TriggerPublisherOptions {
  /** Sends in flight at once (each on its own producer when transactional). */
  maxInFlight?: number;
  /** Triggers per send. */
  maxBatch?: number;
  /**
   * Bytes of trigger and status values per send (one trigger bigger than this goes alone). Many
   * 1,000-user triggers in one send would otherwise exceed the broker's max.message.bytes (1 MiB
   * by default) on a partition, and fail every request in the send.
   */
  maxBatchBytes?: number;
  /**
   * How long a send may wait for more triggers to share it, from the oldest waiting one, when a
   * producer is idle (0: at once). A transaction costs the same round trips and markers whatever
   * it carries, so under load a few ms buy fewer, fuller transactions.
   */
  lingerMs?: number;
  /** Told about every send when it ends: for metrics (how many triggers share a transaction). */
  onSend?: (send: SendOutcome) => void;
  /**
   * Transactional: gives a fresh producer (same transactional id, new epoch) for one whose send
   * failed. kafkajs keeps its idempotence sequence numbers per producer id and rolls back those
   * of every partition of a produce request that failed on one partition, although the others
   * took their records: every later send of that producer then fails with
   * OUT_OF_ORDER_SEQUENCE_NUMBER; librdkafka makes a producer unusable after a fatal error. A
   * new producer id is the only way out. Should not reject; if it does, the old producer is used
   * again (and renewed after its next failure).
   */
  renew?: (broken: TransactionalProducer) => Promise<TransactionalProducer>;
  /** Triggers waiting for a send; one more is refused with SYNC_OVERLOADED (retriable). */
  maxQueued?: number;
  /** Where each trigger's "accepted" status record goes, in the same send (src/streams/status.ts). */
  status?: StatusTarget;
  /**
   * The trigger partition of a user-list trigger, from its id (sticky-trigger-ids.ts); without
   * it the client's partitioner hashes the key. A whole-batch trigger always goes by its key.
   */
  partitionOf?: (triggerId: string) => number;
}

/**
 * One send: `committed` (every trigger in it acknowledged), `aborted` (someone gave up while it
 * was under way; the others were queued again) or `failed` (every trigger in it was rejected).
 */
export interface SendOutcome {
  triggers: number;
  outcome: 'committed' | 'aborted' | 'failed';
  seconds: number;
}

/** Where the publisher records that a trigger was accepted (see src/streams/status.ts). */
export interface StatusTarget {
  topic: string;
  partitions: number;
}

type State = 'queued' | 'sending' | 'committing' | 'settled';

interface Pending {
  message: ProducerRecord;
  status: ProducerRecord | undefined;
  bytes: number;
  state: State;
  /** performance.now() when it was queued; -Infinity once an aborted send put it back (no second linger). */
  queuedAt: number;
  cancelled: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Publishes triggers as JSON checked against schemas/trigger.v1.avsc, waiting for acks = all.
 * Keyed by triggerId so that triggers spread over the partitions: a huge batch on one partition
 * does not hold up unrelated requests on the others. Each trigger's "accepted" status record
 * goes out in the same request (and, transactional, the same transaction), so a status query
 * right after the answer finds it, and a trigger given up on leaves no status either.
 *
 * Group commit: triggers that arrive while sends are in flight go out together in the next send,
 * and an idle producer waits up to `lingerMs` for company. Under load one transaction carries many
 * API calls (fewer round trips, fewer transaction markers, less CPU per request); every caller is
 * still answered only when its own send is acknowledged, and a send that fails fails all of its
 * callers.
 *
 * Bounded: at most `maxQueued` triggers wait; more are refused at once (SYNC_OVERLOADED).
 *
 * Giving up (the caller's signal aborts), by where the trigger is:
 * - still queued: it is withdrawn; nothing was sent.
 * - being sent: the caller is answered at once; in transactional mode the send's transaction is
 *   aborted when the broker answers, so a reader with read_committed never sees it, and the other
 *   triggers of that send go out again. Without transactions it may still be published (the
 *   reason the API uses transactions).
 * - being committed: the caller waits for the commit's outcome, which is the truth either way.
 */
export function createTriggerPublisher(
  producers: readonly TransactionalProducer[] | IdempotentProducer,
  topic: string,
  options: TriggerPublisherOptions = {},
): PublishTrigger {
  const type = triggerAvroType();
  // Transactional producers (an array, one per send in flight): each send is a Kafka transaction,
  // committed only when no trigger in it was given up on; otherwise it is aborted and the others
  // go out again. Readers must use isolation read_committed (the processor does). One idempotent
  // producer: plain sends, several in flight.
  const transactional = Array.isArray(producers);
  const pool: TransactionalProducer[] = transactional ? [...(producers as readonly TransactionalProducer[])] : [];
  const plain = transactional ? undefined : (producers as IdempotentProducer);
  // A transactional producer runs one transaction at a time: one send in flight per producer.
  const maxInFlight = transactional ? pool.length : (options.maxInFlight ?? 2);
  const maxBatch = options.maxBatch ?? 500;
  const maxBatchBytes = options.maxBatchBytes ?? 512 * 1024;
  const lingerMs = options.lingerMs ?? 0;
  const onSend = options.onSend ?? (() => undefined);
  const maxQueued = options.maxQueued ?? Number.POSITIVE_INFINITY;
  const queue: Pending[] = [];
  const idle = [...pool];
  let queuedBytes = 0;
  let inFlight = 0;
  let lingering: NodeJS.Timeout | undefined;

  const topicMessages = (batch: Pending[]): TopicRecords[] => {
    const out: TopicRecords[] = [{ topic, messages: batch.map((p) => p.message) }];
    const status = batch.flatMap((p) => (p.status ? [p.status] : []));
    if (options.status && status.length > 0) out.push({ topic: options.status.topic, messages: status });
    return out;
  };

  const settle = (p: Pending, err?: unknown): void => {
    if (p.state === 'settled') return;
    p.state = 'settled';
    if (err === undefined) p.resolve();
    else p.reject(err);
  };

  const sendPlain = async (producer: IdempotentProducer, batch: Pending[]): Promise<SendOutcome['outcome']> => {
    try {
      await producer.send(topicMessages(batch));
      batch.forEach((p) => settle(p));
      return 'committed';
    } catch (err) {
      const error = translateKafkaError(err, `publishing a trigger to ${topic}`);
      batch.forEach((p) => settle(p, error));
      return 'failed';
    }
  };

  const sendTransaction = async (
    producer: TransactionalProducer,
    batch: Pending[],
  ): Promise<SendOutcome['outcome']> => {
    try {
      await producer.begin();
      await producer.send(topicMessages(batch));
      // A client that buffers (librdkafka) has only queued them: the acknowledgement is waited
      // for here, while a caller may still give up and have the transaction aborted, so that
      // the commit below is the short final step it is with kafkajs.
      await producer.flush();
    } catch (err) {
      if (producer.inTransaction) await producer.abort().catch(() => undefined);
      const error = translateKafkaError(err, `publishing a trigger to ${topic}`);
      batch.forEach((p) => settle(p, error));
      return 'failed';
    }
    const live = batch.filter((p) => !p.cancelled);
    if (live.length < batch.length) {
      // Someone gave up while this was being sent: nobody may ever read this transaction.
      try {
        await producer.abort();
      } catch (err) {
        const error = translateKafkaError(err, `aborting a trigger transaction on ${topic}`);
        live.forEach((p) => settle(p, error));
        return 'failed';
      }
      for (const p of live) p.state = 'queued';
      for (const p of live) p.queuedAt = Number.NEGATIVE_INFINITY;
      queue.unshift(...live);
      queuedBytes += live.reduce((sum, p) => sum + p.bytes, 0);
      return 'aborted';
    }
    // The point of no return: from here the caller waits for the commit's outcome.
    batch.forEach((p) => (p.state = 'committing'));
    try {
      await producer.commit();
      batch.forEach((p) => settle(p));
      return 'committed';
    } catch (err) {
      // Left open, the transaction would keep the producer from beginning the next one.
      if (producer.inTransaction) await producer.abort().catch(() => undefined);
      const error = translateKafkaError(err, `committing a trigger transaction on ${topic}`);
      batch.forEach((p) => settle(p, error));
      return 'failed';
    }
  };

  const pump = (): void => {
    while (queue.length > 0 && inFlight < maxInFlight) {
      const waited = performance.now() - (queue[0] as Pending).queuedAt;
      if (queue.length < maxBatch && queuedBytes < maxBatchBytes && waited < lingerMs) {
        if (lingering === undefined) {
          lingering = setTimeout(
            () => {
              lingering = undefined;
              pump();
            },
            Math.ceil(lingerMs - waited),
          );
          // A waiting caller keeps the process alive (its HTTP request does); the timer need not.
          lingering.unref();
        }
        return;
      }
      let take = 0;
      for (let bytes = 0; take < queue.length && take < maxBatch; take++) {
        bytes += (queue[take] as Pending).bytes;
        if (take > 0 && bytes > maxBatchBytes) break;
      }
      const batch = queue.splice(0, take);
      queuedBytes -= batch.reduce((sum, p) => sum + p.bytes, 0);
      batch.forEach((p) => (p.state = 'sending'));
      inFlight++;
      const started = performance.now();
      const producer = transactional ? (idle.shift() as TransactionalProducer) : undefined;
      const send = producer ? sendTransaction(producer, batch) : sendPlain(plain as IdempotentProducer, batch);
      void send.then(async (outcome) => {
        try {
          onSend({ triggers: batch.length, outcome, seconds: (performance.now() - started) / 1000 });
        } catch {
          // Metrics must not stop the publisher.
        }
        if (producer) {
          let next = producer;
          if (outcome === 'failed' && options.renew) next = await options.renew(producer).catch(() => producer);
          idle.push(next);
        }
        inFlight--;
        pump();
      });
    }
  };

  return (trigger, { signal } = {}) => {
    const problems = avroProblems(type, trigger);
    if (problems.length > 0) {
      return Promise.reject(
        new SyncError('SYNC_BAD_TRIGGER', `trigger fails its schema: ${problems.join('; ')}`, { retriable: false }),
      );
    }
    if (queue.length >= maxQueued) {
      return Promise.reject(
        new SyncError('SYNC_OVERLOADED', `${queue.length} triggers are already waiting for Kafka`, {
          retriable: true,
        }),
      );
    }
    const gaveUp = (): SyncError =>
      new SyncError('SYNC_TIMEOUT', `Kafka did not acknowledge the trigger in time; it will not be published`, {
        retriable: true,
      });
    if (signal?.aborted) return Promise.reject(gaveUp());
    // A whole-batch trigger is keyed by its batch: triggers of one batch queue on one partition,
    // so the second finds the first running and joins it instead of reading the batch again.
    const key = trigger.userIds === null ? `${trigger.courseId}|${trigger.batchId}` : trigger.triggerId;
    const status = options.status
      ? statusMessage(options.status.partitions, statusKey(trigger.triggerId, 'request'), {
          part: 'request',
          triggerId: trigger.triggerId,
          courseId: trigger.courseId,
          batchId: trigger.batchId,
          users: trigger.userIds?.length ?? null,
          requestedBy: trigger.requestedBy,
          requestedAt: trigger.requestedAt,
          source: trigger.source,
        })
      : undefined;
    const value = JSON.stringify(trigger);
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = {
        message:
          trigger.userIds !== null && options.partitionOf
            ? { key, value, partition: options.partitionOf(trigger.triggerId) }
            : { key, value },
        status,
        bytes: Buffer.byteLength(value) + (status?.value ? Buffer.byteLength(status.value as Buffer | string) : 0),
        state: 'queued',
        queuedAt: performance.now(),
        cancelled: false,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        if (pending.state === 'queued') {
          const at = queue.indexOf(pending);
          if (at >= 0) {
            queue.splice(at, 1);
            queuedBytes -= pending.bytes;
          }
          settle(pending, gaveUp());
        } else if (pending.state === 'sending') {
          // Transactional: its transaction will be aborted. Plain: it may still land (see above).
          pending.cancelled = true;
          settle(pending, gaveUp());
        }
        // 'committing': the commit's outcome answers.
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(pending);
      queuedBytes += pending.bytes;
      pump();
    });
  };
}
