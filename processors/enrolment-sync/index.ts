import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { RawAvroSchema } from '@kafkajs/confluent-schema-registry/dist/@types';
import type { BatchPage, BatchReadReport, KeyPage, ReadPosition } from '../../src/cassandra/enrolments';
import { decodeJsonOrAvro } from '../../src/kafka/codecs';
import type { InputMessage, OutputChunk, ProcessContext, StreamProcessor } from '../../src/streams/types';
import { loadAvroSchema, TRIGGER_SCHEMA_FILE } from '../../src/schemas';
import { policyFor, toSyncRecords, type EnrolmentPolicy } from './expand';
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
    from?: number,
  ): AsyncIterable<KeyPage>;
  readBatch(
    courseId: string,
    batchId: string,
    signal: AbortSignal,
    opts?: { resumeFrom?: ReadPosition; report?: (r: BatchReadReport) => void },
  ): AsyncIterable<BatchPage>;
}

export interface EnrolmentSyncDeps {
  enrolments: EnrolmentSource;
  encode: SyncEventEncoder;
  defaults: EnrolmentPolicy;
  /** Needed only to read triggers in the Confluent Avro wire format. */
  registry?: SchemaRegistry;
  keyChunkSize: number;
}

/** Where a trigger stands: how many of its listed users were read, or the whole-batch read position. */
type TriggerPosition = { keys: number } | { batch: ReadPosition };

export function createEnrolmentSyncProcessor(deps: EnrolmentSyncDeps): StreamProcessor<SyncTrigger> {
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

    async *process(trigger: SyncTrigger, ctx: ProcessContext): AsyncIterable<OutputChunk> {
      const policy = policyFor(trigger, deps.defaults);
      const resume = ctx.resumeFrom as TriggerPosition | undefined;
      if (trigger.userIds !== null) {
        const from = resume && 'keys' in resume ? resume.keys : 0;
        const pages = deps.enrolments.findByKeysInChunks(
          trigger.courseId,
          trigger.batchId,
          trigger.userIds,
          deps.keyChunkSize,
          ctx.signal,
          from,
        );
        for await (const page of pages) {
          const records = toSyncRecords(trigger, page.rows, policy, deps.encode);
          yield { records, position: { keys: page.next } satisfies TriggerPosition, rowsRead: page.rows.length };
        }
        return;
      }
      const pages = deps.enrolments.readBatch(trigger.courseId, trigger.batchId, ctx.signal, {
        resumeFrom: resume && 'batch' in resume ? resume.batch : undefined,
        report: (report) => ctx.log.info(report, 'whole-batch read plan'),
      });
      for await (const page of pages) {
        const records = toSyncRecords(trigger, page.rows, policy, deps.encode);
        yield { records, position: { batch: page.position } satisfies TriggerPosition, rowsRead: page.rows.length };
      }
    },
  };
}
