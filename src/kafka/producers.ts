import type { Kafka } from 'kafkajs';
import type { Settings } from '../config';
import type { Logger } from '../observability/logger';
import { kafkajsProducerClient } from './kafkajs-producer';
import type { ProducerClient } from './ports';

/**
 * The producer adapter KAFKA_CLIENT names. The confluent adapter is loaded only when chosen, so
 * a kafkajs deployment never loads the native module.
 */
export async function createProducerClient(
  settings: Settings['kafka'],
  kafka: Kafka,
  log: Logger,
): Promise<ProducerClient> {
  if (settings.client === 'confluent') {
    const { confluentProducerClient } = await import('./confluent-producer');
    return confluentProducerClient(settings, log.child({ kafkaClient: 'confluent' }));
  }
  return kafkajsProducerClient(kafka);
}
