import { Kafka, Partitioners, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { Settings } from '../config';
import { kafkaLogCreator, type Logger } from '../observability/logger';
import { SyncError } from '../errors';
import { describeSecurityFailure, readTlsMaterial } from '../util/tls';

/** TLS and SASL as kafkajs spells them; plaintext when neither is configured (the local default). */
export function kafkaSecurity(settings: Settings['kafka']): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (settings.tls) out.ssl = readTlsMaterial(settings.tls, 'KAFKA');
  if (settings.sasl) {
    const { mechanism, username, password } = settings.sasl;
    out.sasl = { mechanism, username, password } as SASLOptions;
  }
  return out;
}

export function createKafka(settings: Settings['kafka'], log: Logger, overrides: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout: settings.connectionTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    logCreator: kafkaLogCreator(log),
    ...kafkaSecurity(settings),
    ...overrides,
  });
}

/**
 * kafkajs errors carry `retriable`; translate them once, here at the adapter's edge. Rejected
 * credentials and failed TLS handshakes are named as such and are not retriable: waiting does
 * not fix a wrong password or an untrusted certificate.
 */
export function translateKafkaError(err: unknown, what: string): SyncError {
  const security = describeSecurityFailure(err, 'Kafka', {
    credentials: 'KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD',
    tlsPrefix: 'KAFKA',
  });
  if (security) return new SyncError(security.code, `${what}: ${security.message}`, { retriable: false, cause: err });
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
