import { randomUUID } from 'node:crypto';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { RawAvroSchema } from '@kafkajs/confluent-schema-registry/dist/@types';
import type { BatchReadReport, EnrolmentRow } from '../../src/cassandra/enrolments';
import { decodeJsonOrAvro } from '../../src/kafka/codecs';
import type { InputMessage, ProcessContext, StreamProcessor, OutputRecord } from '../../src/streams/types';
import { loadAvroSchema, TRIGGER_SCHEMA_FILE } from '../../src/schemas';
import { policyFor, toSyncRecords, type Clock, type EnrolmentPolicy } from './expand';
import type { SyncEventEncoder } from './sync-event';
import { parseTrigger, type SyncTrigger } from './trigger';

export const PROCESSOR_NAME = 'enrolment-sync';

/** Triggers of up to this many users are expanded together with their neighbours (see the runtime). */
export const SMALL_TRIGGER_USERS = 100;

/** The reads the processor needs; src/cassandra/enrolments.ts provides them. */
export interface EnrolmentSource {
  findByKeysInChunks(
    courseId: string,
    batchId: string,
    userIds: readonly string[],
    chunkSize: number,
    signal?: AbortSignal,
  ): AsyncIterable<EnrolmentRow[]>;
  readBatch(
    courseId: string,
    batchId: string,
    signal: AbortSignal,
    report?: (r: BatchReadReport) => void,
  ): AsyncIterable<EnrolmentRow[]>;
}

export interface EnrolmentSyncDeps {
  enrolments: EnrolmentSource;
  encode: SyncEventEncoder;
  defaults: EnrolmentPolicy;
  /** Needed only to read triggers in the Confluent Avro wire format. */
  registry?: SchemaRegistry;
  keyChunkSize: number;
  clock?: Clock;
}

export const systemClock: Clock = { now: () => Date.now(), uuid: () => randomUUID() };

export function createEnrolmentSyncProcessor(deps: EnrolmentSyncDeps): StreamProcessor<SyncTrigger> {
  const clock = deps.clock ?? systemClock;
  const readerSchema = loadAvroSchema(TRIGGER_SCHEMA_FILE) as unknown as RawAvroSchema;
  return {
    name: PROCESSOR_NAME,

    async decode(message: InputMessage): Promise<SyncTrigger> {
      const value = await decodeJsonOrAvro(message.value, deps.registry, readerSchema);
      return parseTrigger(value, message);
    },

    isSmall(trigger: SyncTrigger): boolean {
      return trigger.userIds !== null && trigger.userIds.length <= SMALL_TRIGGER_USERS;
    },

    describe(trigger: SyncTrigger): Record<string, unknown> {
      return {
        triggerId: trigger.triggerId,
        courseId: trigger.courseId,
        batchId: trigger.batchId,
        users: trigger.userIds?.length ?? 'all',
        source: trigger.source,
      };
    },

    async *process(trigger: SyncTrigger, ctx: ProcessContext): AsyncIterable<OutputRecord[]> {
      const policy = policyFor(trigger, deps.defaults);
      const pages =
        trigger.userIds !== null
          ? deps.enrolments.findByKeysInChunks(
              trigger.courseId,
              trigger.batchId,
              trigger.userIds,
              deps.keyChunkSize,
              ctx.signal,
            )
          : deps.enrolments.readBatch(trigger.courseId, trigger.batchId, ctx.signal, (report) =>
              ctx.log.info(report, 'whole-batch read plan'),
            );
      for await (const rows of pages) {
        const records = toSyncRecords(trigger, rows, policy, deps.encode, clock);
        if (records.length > 0) yield records;
      }
    },
  };
}
