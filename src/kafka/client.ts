import { Kafka, Partitioners, type KafkaConfig } from 'kafkajs';
import type { Settings } from '../config';
import { kafkaLogCreator, type Logger } from '../observability/logger';
import { SyncError } from '../errors';

export function createKafka(settings: Settings['kafka'], log: Logger, overrides: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout: settings.connectionTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    logCreator: kafkaLogCreator(log),
    ...overrides,
  });
}

/** kafkajs errors carry `retriable`; translate them once, here at the adapter's edge. */
export function translateKafkaError(err: unknown, what: string): SyncError {
  const retriable =
    typeof err === 'object' && err !== null && 'retriable' in err
      ? Boolean((err as { retriable: unknown }).retriable)
      : true;
  const message = err instanceof Error ? err.message : String(err);
  return new SyncError('SYNC_KAFKA_UNAVAILABLE', `${what}: ${message}`, { retriable, cause: err });
}

/**
 * Murmur2 over the key, as the Java client partitions: a user's events land on the partition a
 * JVM producer would have chosen, which is what existing consumers of these topics expect.
 */
export const javaCompatiblePartitioner = Partitioners.DefaultPartitioner;
