import type { Producer } from 'kafkajs';
import type { SyncTrigger } from '../../processors/enrolment-sync/trigger';
import { SyncError } from '../errors';
import { triggerAvroType } from '../schemas';
import { avroProblems } from './codecs';
import { translateKafkaError } from './client';

export type PublishTrigger = (trigger: SyncTrigger) => Promise<void>;

/**
 * Publishes triggers as JSON checked against schemas/trigger.v1.avsc, waiting for acks = all.
 * Keyed by triggerId so that triggers spread over the partitions: a huge batch on one partition
 * does not hold up unrelated requests on the others.
 */
export function createTriggerPublisher(producer: Producer, topic: string): PublishTrigger {
  const type = triggerAvroType();
  return async (trigger) => {
    const problems = avroProblems(type, trigger);
    if (problems.length > 0) {
      throw new SyncError('SYNC_BAD_TRIGGER', `trigger fails its schema: ${problems.join('; ')}`, { retriable: false });
    }
    try {
      await producer.send({
        topic,
        acks: -1,
        messages: [{ key: trigger.triggerId, value: JSON.stringify(trigger) }],
      });
    } catch (err) {
      throw translateKafkaError(err, `publishing a trigger to ${topic}`);
    }
  };
}
