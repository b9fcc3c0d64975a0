import type { EnrolmentRow } from '../../src/cassandra/enrolments';
import type { OutputRecord } from '../../src/streams/types';
import { buildSyncEvent, type SyncEventEncoder } from './sync-event';
import type { SyncTrigger } from './trigger';

export const COMPLETED_STATUS = 2;

export interface EnrolmentPolicy {
  includeInactive: boolean;
  includeCompleted: boolean;
}

/** A trigger's own choice wins over the processor's default. */
export function policyFor(trigger: SyncTrigger, defaults: EnrolmentPolicy): EnrolmentPolicy {
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

export interface Clock {
  now(): number;
  uuid(): string;
}

/** Pure: enrolment rows of one trigger → the sync records to produce, keyed by userId. */
export function toSyncRecords(
  trigger: SyncTrigger,
  rows: readonly EnrolmentRow[],
  policy: EnrolmentPolicy,
  encode: SyncEventEncoder,
  clock: Clock,
): OutputRecord[] {
  const records: OutputRecord[] = [];
  const ets = clock.now();
  for (const row of rows) {
    if (!shouldSync(row, policy)) continue;
    const event = buildSyncEvent(trigger.courseId, trigger.batchId, row.userId, ets, clock.uuid());
    records.push({ key: row.userId, value: encode(event) });
  }
  return records;
}
