import type { Message, Producer } from 'kafkajs';
import type { SyncTrigger } from '../../processors/enrolment-sync/trigger';
import { SyncError } from '../errors';
import { triggerAvroType } from '../schemas';
import { avroProblems } from './codecs';
import { translateKafkaError } from './client';
import { statusKey, statusMessage } from '../streams/status';

export type PublishTrigger = (trigger: SyncTrigger) => Promise<void>;

interface Pending {
  message: Message;
  status: Message | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Where the publisher records that a trigger was accepted (see src/streams/status.ts). */
export interface StatusTarget {
  topic: string;
  partitions: number;
}

/**
 * Publishes triggers as JSON checked against schemas/trigger.v1.avsc, waiting for acks = all.
 * Keyed by triggerId so that triggers spread over the partitions: a huge batch on one partition
 * does not hold up unrelated requests on the others. Each trigger's "accepted" status record
 * goes out in the same request, so a status query right after the answer finds it.
 *
 * Group commit: a trigger is sent at once when the producer is idle; triggers that arrive while
 * sends are in flight go out together in the next send. Under load one produce request carries
 * many API calls (fewer broker round trips per request), and an idle API adds no delay.
 */
export function createTriggerPublisher(
  producer: Producer,
  topic: string,
  options: { maxInFlight?: number; maxBatch?: number; status?: StatusTarget } = {},
): PublishTrigger {
  const type = triggerAvroType();
  const maxInFlight = options.maxInFlight ?? 2;
  const maxBatch = options.maxBatch ?? 500;
  const queue: Pending[] = [];
  let inFlight = 0;

  const pump = (): void => {
    while (queue.length > 0 && inFlight < maxInFlight) {
      const batch = queue.splice(0, maxBatch);
      inFlight++;
      const status = batch.flatMap((p) => (p.status ? [p.status] : []));
      const topicMessages = [{ topic, messages: batch.map((p) => p.message) }];
      if (options.status && status.length > 0) topicMessages.push({ topic: options.status.topic, messages: status });
      producer
        .sendBatch({ acks: -1, topicMessages })
        .then(
          () => batch.forEach((p) => p.resolve()),
          (err: unknown) => {
            const error = translateKafkaError(err, `publishing a trigger to ${topic}`);
            batch.forEach((p) => p.reject(error));
          },
        )
        .finally(() => {
          inFlight--;
          pump();
        });
    }
  };

  return (trigger) => {
    const problems = avroProblems(type, trigger);
    if (problems.length > 0) {
      return Promise.reject(
        new SyncError('SYNC_BAD_TRIGGER', `trigger fails its schema: ${problems.join('; ')}`, { retriable: false }),
      );
    }
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
    return new Promise<void>((resolve, reject) => {
      queue.push({ message: { key, value: JSON.stringify(trigger) }, status, resolve, reject });
      pump();
    });
  };
}
