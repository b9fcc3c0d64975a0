import type { Message, Producer } from 'kafkajs';
import type { SyncTrigger } from '../../processors/enrolment-sync/trigger';
import { SyncError } from '../errors';
import { triggerAvroType } from '../schemas';
import { avroProblems } from './codecs';
import { translateKafkaError } from './client';

export type PublishTrigger = (trigger: SyncTrigger) => Promise<void>;

interface Pending {
  message: Message;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Publishes triggers as JSON checked against schemas/trigger.v1.avsc, waiting for acks = all.
 * Keyed by triggerId so that triggers spread over the partitions: a huge batch on one partition
 * does not hold up unrelated requests on the others.
 *
 * Group commit: a trigger is sent at once when the producer is idle; triggers that arrive while
 * sends are in flight go out together in the next send. Under load one produce request carries
 * many API calls (fewer broker round trips per request), and an idle API adds no delay.
 */
export function createTriggerPublisher(
  producer: Producer,
  topic: string,
  options: { maxInFlight?: number; maxBatch?: number } = {},
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
      producer
        .send({ topic, acks: -1, messages: batch.map((p) => p.message) })
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
    return new Promise<void>((resolve, reject) => {
      queue.push({ message: { key: trigger.triggerId, value: JSON.stringify(trigger) }, resolve, reject });
      pump();
    });
  };
}
