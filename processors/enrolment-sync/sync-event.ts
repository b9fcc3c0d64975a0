import { createHash } from 'node:crypto';
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

// The namespace of our name-based event ids (a random v4 UUID, fixed forever).
const SYNC_EVENT_NAMESPACE = Buffer.from('6f1d2c8e4b7a4e3f9a0d5c2b1e8f7a63', 'hex');

/**
 * A version-5 (SHA-1, name-based) UUID of (triggerId, userId), as RFC 9562 defines it: the same
 * pair always gives the same id. The name is the JSON array of both, so no pair of ids can run
 * together into another pair's name.
 */
export function syncEventUuid(triggerId: string, userId: string): string {
  const digest = createHash('sha1')
    .update(SYNC_EVENT_NAMESPACE)
    .update(JSON.stringify([triggerId, userId]))
    .digest();
  digest[6] = ((digest[6] as number) & 0x0f) | 0x50;
  digest[8] = ((digest[8] as number) & 0x3f) | 0x80;
  const hex = digest.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
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
      return syncEventJson(event);
    };
  }
  if (!frame) throw new Error('the Avro format needs a registered schema id');
  return (event) => {
    check(event);
    return frame(type.toBuffer(event));
  };
}

const quoted = new Map<string, string>();
/** JSON.stringify of a string, remembered for the few strings that repeat on every event. */
function quoteRepeated(value: string): string {
  let json = quoted.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    if (quoted.size < 256) quoted.set(value, json);
  }
  return json;
}

/**
 * Exactly JSON.stringify(event), in the design's key order, written out by hand: the constant
 * parts and the trigger's course and batch ids are quoted once, not once per event. Measured at
 * 0.9 µs an event against 2.1 µs for JSON.stringify of the object (docs/benchmarks.md).
 */
export function syncEventJson(e: SyncEvent): string {
  const q = JSON.stringify;
  return (
    `{"eid":${quoteRepeated(e.eid)},"ets":${q(e.ets)},"mid":${q(e.mid)},` +
    `"actor":{"type":${quoteRepeated(e.actor.type)},"id":${quoteRepeated(e.actor.id)}},` +
    `"context":{"pdata":{"ver":${quoteRepeated(e.context.pdata.ver)},"id":${quoteRepeated(e.context.pdata.id)}}},` +
    `"object":{"type":${quoteRepeated(e.object.type)},"id":${q(e.object.id)}},` +
    `"edata":{"action":${quoteRepeated(e.edata.action)},"iteration":${q(e.edata.iteration)},` +
    `"batchId":${quoteRepeated(e.edata.batchId)},"userId":${q(e.edata.userId)},"courseId":${quoteRepeated(e.edata.courseId)}}}`
  );
}
