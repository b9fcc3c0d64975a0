import type { Kafka } from 'kafkajs';
import type { Settings } from '../config';
import type { Logger } from '../observability/logger';
import { kafkajsProducerClient } from './kafkajs-producer';
import type { ProducerClient } from './ports';
import { SyncError } from '../errors';

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
    const { confluentProducerClient } = await loadConfluentAdapter();
    return confluentProducerClient(settings, log.child({ kafkaClient: 'confluent' }));
  }
  return kafkajsProducerClient(kafka, settings.compression);
}

/**
 * The librdkafka binding is compiled for one Node.js ABI by `make install`; run on another Node
 * (or installed with --ignore-scripts) it cannot load. That is a deployment mistake, not an
 * outage: say so with the two ways out instead of a dlopen stack.
 */
async function loadConfluentAdapter(): Promise<typeof import('./confluent-producer')> {
  try {
    return await import('./confluent-producer');
  } catch (err) {
    throw new SyncError(
      'SYNC_CONFIG',
      `KAFKA_CLIENT=confluent: the librdkafka binding (@confluentinc/kafka-javascript) does not load on node ${process.version} (${(err as Error).message.replace(/\s+/g, ' ').slice(0, 400)}); build it for this node with \`make install\`, or set KAFKA_CLIENT=kafkajs`,
      { retriable: false, field: 'KAFKA_CLIENT', cause: err },
    );
  }
}
