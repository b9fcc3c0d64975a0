import type { EnrolmentRow } from '../../src/cassandra/enrolments';
import type { OutputRecord } from '../../src/streams/types';
import { buildSyncEvent, syncEventUuid, type SyncEventEncoder } from './sync-event';
import type { SyncTrigger } from './trigger';

export const COMPLETED_STATUS = 2;

export interface EnrolmentPolicy {
  includeInactive: boolean;
  includeCompleted: boolean;
}

/** A trigger's own choice wins over the processor's default. */
export function policyFor(
  trigger: Pick<SyncTrigger, 'includeInactive' | 'includeCompleted'>,
  defaults: EnrolmentPolicy,
): EnrolmentPolicy {
  return {
    includeInactive: trigger.includeInactive ?? defaults.includeInactive,
    includeCompleted: trigger.includeCompleted ?? defaults.includeCompleted,
  };
}

export function shouldSync(row: EnrolmentRow, policy: EnrolmentPolicy): boolean {
  if (row.active === false && !policy.includeInactive) return false;
  if (row.status === COMPLETED_STATUS && !policy.includeCompleted) return false;
  return true;
}

/**
 * Pure: enrolment rows of one trigger → the sync records to produce, keyed by userId. A record is
 * a function of (trigger, row) alone: ets is the trigger's requestedAt and mid a name-based UUID
 * of (triggerId, userId), so an event replayed after a crash is byte-identical to the first and
 * a consumer can recognise it, while a new trigger for the same user gets a new mid.
 */
export function toSyncRecords(
  trigger: Pick<SyncTrigger, 'triggerId' | 'courseId' | 'batchId' | 'requestedAt'>,
  rows: readonly EnrolmentRow[],
  policy: EnrolmentPolicy,
  encode: SyncEventEncoder,
): OutputRecord[] {
  if (encode.many) {
    const userIds: string[] = [];
    for (const row of rows) if (shouldSync(row, policy)) userIds.push(row.userId);
    return encode.many(trigger, userIds);
  }
  const records: OutputRecord[] = [];
  const ets = trigger.requestedAt;
  for (const row of rows) {
    if (!shouldSync(row, policy)) continue;
    const uuid = syncEventUuid(trigger.triggerId, row.userId);
    const event = buildSyncEvent(trigger.courseId, trigger.batchId, row.userId, ets, uuid);
    records.push({ key: row.userId, value: encode(event) });
  }
  return records;
}
