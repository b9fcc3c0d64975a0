import type avro from 'avsc';
import { SyncError } from '../../src/errors';

/** The sync event exactly as the platform design gives it; key order is the design's. */
export interface SyncEvent {
  eid: 'BE_JOB_REQUEST';
  ets: number;
  mid: string;
  actor: { type: 'System'; id: 'Course Batch Updater' };
  context: { pdata: { ver: '1.0'; id: 'org.sunbird.platform' } };
  object: { type: 'CourseBatchEnrolment'; id: string };
  edata: {
    action: 'user-enrolment-sync';
    iteration: number;
    batchId: string;
    userId: string;
    courseId: string;
  };
}

export function buildSyncEvent(
  courseId: string,
  batchId: string,
  userId: string,
  ets: number,
  uuid: string,
): SyncEvent {
  return {
    eid: 'BE_JOB_REQUEST',
    ets,
    mid: `LP.${ets}.${uuid}`,
    actor: { type: 'System', id: 'Course Batch Updater' },
    context: { pdata: { ver: '1.0', id: 'org.sunbird.platform' } },
    object: { type: 'CourseBatchEnrolment', id: `${batchId}_${userId}` },
    edata: { action: 'user-enrolment-sync', iteration: 1, batchId, userId, courseId },
  };
}

export type SyncEventEncoder = (event: SyncEvent) => Buffer | string;

/**
 * Validates every event against its Avro schema before it is encoded: a record that fails is
 * never produced. JSON is what the platform's progress jobs read; Avro uses the Confluent wire
 * format with the id the registry gave the schema.
 */
export function createSyncEventEncoder(
  type: avro.Type,
  format: 'json' | 'avro',
  frame?: (body: Buffer) => Buffer,
): SyncEventEncoder {
  const check = (event: SyncEvent): void => {
    if (!type.isValid(event)) {
      const paths: string[] = [];
      type.isValid(event, { errorHook: (path) => paths.push(path.join('.')) });
      throw new SyncError('SYNC_INVALID_EVENT', `sync event fails its schema at ${paths.join(', ')}`, {
        retriable: false,
        field: paths[0],
      });
    }
  };
  if (format === 'json') {
    return (event) => {
      check(event);
      return JSON.stringify(event);
    };
  }
  if (!frame) throw new Error('the Avro format needs a registered schema id');
  return (event) => {
    check(event);
    return frame(type.toBuffer(event));
  };
}
