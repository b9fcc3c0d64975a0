import { Kafka, Partitioners, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { Settings } from '../config';
import { kafkaLogCreator, type Logger } from '../observability/logger';
import { isSyncError, SyncError } from '../errors';
import { describeSecurityFailure, readTlsMaterial } from '../util/tls';
import { registerCompressionCodecs } from './compression-codecs';

registerCompressionCodecs();

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

const UNAUTHORIZED_TYPES = new Set([
  'SASL_AUTHENTICATION_FAILED',
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'ILLEGAL_SASL_STATE',
  'UNSUPPORTED_SASL_MECHANISM',
]);
// The broker says our producer epoch is stale: another instance took the transactional id over
// (or our transaction state is gone). Our open transaction is void; the new owner carries on.
const FENCED_TYPES = new Set([
  'INVALID_PRODUCER_EPOCH',
  'PRODUCER_FENCED',
  'INVALID_PRODUCER_ID_MAPPING',
  'INVALID_TXN_STATE',
  'TRANSACTIONAL_ID_NOT_FOUND',
]);
// kafkajs's own transaction state machine refusing a call: the producer is unusable; replace it.
const LOCAL_TXN_STATE = /Transaction state exception|Cannot continue to use transaction|already an ongoing transaction/;
const REQUEST_FAILED_TYPES = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
]);

/**
 * librdkafka's error codes (@confluentinc/kafka-javascript's LibrdKafkaError.code) for the
 * protocol errors above, by their kafkajs names, so both clients share one classification.
 * Negative codes are librdkafka's own: ERR__FENCED is its local view of a fenced producer.
 */
const RDKAFKA_TYPES: ReadonlyMap<number, string> = new Map([
  [-144, 'PRODUCER_FENCED'],
  [90, 'PRODUCER_FENCED'],
  [47, 'INVALID_PRODUCER_EPOCH'],
  [48, 'INVALID_TXN_STATE'],
  [49, 'INVALID_PRODUCER_ID_MAPPING'],
  [29, 'TOPIC_AUTHORIZATION_FAILED'],
  [30, 'GROUP_AUTHORIZATION_FAILED'],
  [31, 'CLUSTER_AUTHORIZATION_FAILED'],
  [53, 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'],
  [58, 'SASL_AUTHENTICATION_FAILED'],
  [-169, 'SASL_AUTHENTICATION_FAILED'],
  [10, 'MESSAGE_TOO_LARGE'],
  [18, 'RECORD_LIST_TOO_LARGE'],
  [2, 'CORRUPT_MESSAGE'],
  [87, 'INVALID_RECORD'],
]);

/** A LibrdKafkaError: a numeric code and where it came from (the broker, or librdkafka itself). */
interface RdkafkaErrorShape {
  code: number;
  origin: string;
  isFatal?: boolean;
  isTxnRequiresAbort?: boolean;
}

function asRdkafkaError(err: unknown): RdkafkaErrorShape | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, origin } = err as { code?: unknown; origin?: unknown };
  return typeof code === 'number' && typeof origin === 'string' ? (err as RdkafkaErrorShape) : undefined;
}

/** The innermost kafkajs error, through KafkaJSNumberOfRetriesExceeded and KafkaJSNonRetriableError. */
function protocolType(err: unknown): string | undefined {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; depth++) {
    const { type, name } = e as { type?: unknown; name?: unknown };
    if (typeof type === 'string') return type;
    const rd = asRdkafkaError(e);
    if (rd) return RDKAFKA_TYPES.get(rd.code);
    if (name === 'KafkaJSSASLAuthenticationError') return 'SASL_AUTHENTICATION_FAILED';
    e = (e as { cause?: unknown; originalError?: unknown }).cause ?? (e as { originalError?: unknown }).originalError;
  }
  return undefined;
}

/**
 * Translates a kafkajs error once, here at the adapter's edge. kafkajs has already retried what
 * it retries, so what reaches us is an outage (brokers unreachable, retries exhausted), unless it
 * names a refused login or grant (fatal), a fenced producer, or a record the broker refuses.
 */
export function translateKafkaError(err: unknown, what: string): SyncError {
  if (isSyncError(err)) return err;
  // Rejected credentials and failed TLS handshakes, named with the variables to check.
  const security = describeSecurityFailure(err, 'Kafka', {
    credentials: 'KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD',
    tlsPrefix: 'KAFKA',
  });
  if (security) return new SyncError(security.code, `${what}: ${security.message}`, { retriable: false, cause: err });
  const message = err instanceof Error ? err.message : String(err);
  const type = protocolType(err);
  if (type !== undefined && UNAUTHORIZED_TYPES.has(type)) {
    return new SyncError('SYNC_UNAUTHORIZED', `${what}: Kafka refused access (${type}): ${message}`, {
      retriable: false,
      cause: err,
    });
  }
  const rd = asRdkafkaError(err);
  // librdkafka raises a fatal error when the producer can never be used again (fenced, or its
  // idempotence state lost), and ERR__STATE when a transactional call comes in the wrong state:
  // either way only a new producer with the id recovers, which is what the fenced path makes.
  const unusable = rd !== undefined && (rd.isFatal === true || rd.code === -172);
  if ((type !== undefined && FENCED_TYPES.has(type)) || LOCAL_TXN_STATE.test(message) || unusable) {
    return new SyncError('SYNC_FENCED', `${what}: producer fenced (${type}): ${message}`, {
      retriable: false,
      cause: err,
    });
  }
  // librdkafka's abortable transaction errors: this transaction is lost, the producer is fine.
  if ((type !== undefined && REQUEST_FAILED_TYPES.has(type)) || rd?.isTxnRequiresAbort === true) {
    return new SyncError('SYNC_KAFKA_REQUEST_FAILED', `${what}: ${type}: ${message}`, { retriable: true, cause: err });
  }
  return new SyncError('SYNC_KAFKA_UNAVAILABLE', `${what}: ${message}`, { retriable: true, cause: err });
}

/** Connects a kafkajs admin, producer or consumer; a failure names the brokers it tried. */
export async function connectTo<T extends { connect(): Promise<void> }>(
  client: T,
  brokers: readonly string[],
): Promise<T> {
  try {
    await client.connect();
  } catch (err) {
    throw translateKafkaError(err, connectingToKafka(brokers));
  }
  return client;
}

/** What a failed connection was doing: the addresses, and the variable they came from. */
export function connectingToKafka(brokers: readonly string[]): string {
  return `connecting to Kafka at ${brokers.join(',')} (KAFKA_BROKERS)`;
}

/**
 * Murmur2 over the key, as the Java client partitions: a user's events land on the partition a
 * JVM producer would have chosen, which is what existing consumers of these topics expect.
 */
export const javaCompatiblePartitioner = Partitioners.DefaultPartitioner;
