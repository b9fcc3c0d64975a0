/**
 * What the stream runtime needs from a Kafka client to produce, in its own types. A client
 * library is an adapter behind these ports (kafkajs in kafka-kafkajs.ts, librdkafka through
 * @confluentinc/kafka-javascript in kafka-confluent.ts), chosen by KAFKA_CLIENT; nothing in
 * src/streams imports a client library's producer types.
 *
 * Adapters translate their library's errors at this edge (translateKafkaError): what leaves a
 * port is a SyncError whose code says outage, transient, fatal or fenced.
 */

/** Header values as they travel: a repeated header is an array. */
export type RecordHeaders = Record<string, Buffer | string | Array<Buffer | string> | undefined>;

export interface ProducerRecord {
  key?: Buffer | string | null;
  /** null is a tombstone (compacted topics). */
  value: Buffer | string | null;
  headers?: RecordHeaders;
  /** Left out: the key chooses it, murmur2 as the Java client does. */
  partition?: number;
  /** Milliseconds since the epoch, as a decimal string; left out: the time of sending. */
  timestamp?: string;
}

export interface TopicRecords {
  topic: string;
  messages: readonly ProducerRecord[];
}

/** Which client library the runtime produces with (KAFKA_CLIENT). */
export type KafkaClientName = 'kafkajs' | 'confluent';
export const kafkaClientNames: readonly KafkaClientName[] = ['kafkajs', 'confluent'];

/**
 * How the producers compress record batches (KAFKA_COMPRESSION): codecs both clients write and
 * every kafkajs consumer of ours reads (src/kafka/compression-codecs.ts). Snappy and zstd are read
 * there too but not offered here: kafkajs has no encoder for either.
 */
export type KafkaCompression = 'none' | 'gzip' | 'lz4';
export const kafkaCompressions: readonly KafkaCompression[] = ['none', 'gzip', 'lz4'];

/**
 * A transactional producer owning one transactional id. Every call but close() rejects with a
 * translated SyncError; SYNC_FENCED means another producer took the id over and this one is void.
 */
export interface TransactionalProducer {
  /**
   * Connects and fences: InitProducerId for the id bumps its epoch, so every earlier producer of
   * it is fenced and the transaction it left open is aborted before this resolves.
   */
  open(): Promise<void>;
  begin(): Promise<void>;
  /** Between begin() and commit()/abort(). */
  readonly inTransaction: boolean;
  /** Resolves when the records are acknowledged or, for a client that buffers, accepted for the transaction. */
  send(batches: readonly TopicRecords[]): Promise<void>;
  /**
   * Resolves when every record sent in this transaction is acknowledged (a no-op for a client
   * whose send already waits): a caller that may still give up waits here, not in commit().
   */
  flush(): Promise<void>;
  /** Commits `offset` (the next to read) of the input partition for `groupId` with the transaction. */
  sendOffsets(groupId: string, topic: string, partition: number, offset: string): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  /** Never rejects; may be called in any state and more than once. */
  close(): Promise<void>;
}

/**
 * An idempotent producer (at-least-once). Every call but close() rejects with a translated
 * SyncError.
 */
export interface IdempotentProducer {
  open(): Promise<void>;
  /** Resolves once these records and every record enqueued before are acknowledged (acks=all). */
  send(batches: readonly TopicRecords[]): Promise<void>;
  /**
   * Hands records over without waiting for their acknowledgement (a client that cannot tell
   * acknowledgements apart cheaply buffers them; one that can, may wait). What was enqueued is
   * durable once a later send() or flush() resolves; a record that failed fails that call.
   */
  enqueue(batches: readonly TopicRecords[]): Promise<void>;
  /** Resolves once every record enqueued or sent so far is acknowledged; rejects if one failed. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface TransactionalProducerOptions {
  transactionalId: string;
  transactionTimeoutMs: number;
}

/** The producer side of one client library, shared by a runtime's sinks. */
export interface ProducerClient {
  readonly name: KafkaClientName;
  transactionalProducer(options: TransactionalProducerOptions): TransactionalProducer;
  idempotentProducer(): IdempotentProducer;
  /** Releases what the sinks' producers share (none for kafkajs). */
  close(): Promise<void>;
}
