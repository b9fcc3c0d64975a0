import { SyncError } from '../../src/errors';

export const triggerSources = ['api', 'batch', 'upstream'] as const;
export type TriggerSource = (typeof triggerSources)[number];

/** The trigger contract (schemas/trigger.v1.avsc), after decoding and checking. */
export interface SyncTrigger {
  triggerId: string;
  courseId: string;
  batchId: string;
  /** null: every enrolled user of the batch. */
  userIds: string[] | null;
  requestedBy: string;
  requestedAt: number;
  source: TriggerSource;
  includeInactive: boolean | null;
  includeCompleted: boolean | null;
}

/** Where the trigger came from, for the defaults an upstream producer may leave out. */
export interface TriggerOrigin {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
}

export const MAX_ID_LENGTH = 1024;

function bad(field: string, message: string): SyncError {
  return new SyncError('SYNC_BAD_TRIGGER', `${field} ${message}`, { retriable: false, field });
}

function requiredId(obj: Record<string, unknown>, field: string): string {
  const value = obj[field];
  if (value === undefined || value === null) throw bad(field, 'is missing');
  if (typeof value !== 'string') throw bad(field, `must be a string, got ${typeof value}`);
  if (value.trim() === '') throw bad(field, 'must not be empty');
  if (value.length > MAX_ID_LENGTH) throw bad(field, `must be at most ${MAX_ID_LENGTH} characters`);
  return value;
}

function optionalString(obj: Record<string, unknown>, field: string): string | undefined {
  const value = obj[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw bad(field, 'must be a non-empty string');
  return value;
}

function optionalBoolean(obj: Record<string, unknown>, field: string): boolean | null {
  const value = obj[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'boolean') throw bad(field, 'must be true, false or null');
  return value;
}

/**
 * Checks a decoded trigger (from JSON or Avro) field by field. Upstream producers may leave out
 * triggerId, requestedBy, requestedAt and source; they are derived from where the message sits.
 * An explicit empty userIds list is refused rather than read as "the whole batch".
 */
export function parseTrigger(value: unknown, origin: TriggerOrigin): SyncTrigger {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SyncError('SYNC_BAD_TRIGGER', 'trigger must be a JSON object', { retriable: false });
  }
  const obj = value as Record<string, unknown>;
  const courseId = requiredId(obj, 'courseId');
  const batchId = requiredId(obj, 'batchId');

  let userIds: string[] | null = null;
  const rawUsers = obj.userIds;
  if (rawUsers !== undefined && rawUsers !== null) {
    if (!Array.isArray(rawUsers)) throw bad('userIds', 'must be a list of user ids or null');
    if (rawUsers.length === 0) throw bad('userIds', 'must not be empty (leave it out to sync the whole batch)');
    const unique = new Set<string>();
    rawUsers.forEach((u, i) => {
      if (typeof u !== 'string' || u.trim() === '') throw bad(`userIds[${i}]`, 'must be a non-empty string');
      if (u.length > MAX_ID_LENGTH) throw bad(`userIds[${i}]`, `must be at most ${MAX_ID_LENGTH} characters`);
      unique.add(u);
    });
    userIds = [...unique];
  }

  const triggerId = optionalString(obj, 'triggerId') ?? `${origin.topic}-${origin.partition}-${origin.offset}`;
  const requestedBy = optionalString(obj, 'requestedBy') ?? 'upstream';

  let requestedAt = Number(origin.timestamp);
  const rawAt = obj.requestedAt;
  if (rawAt !== undefined && rawAt !== null) {
    if (typeof rawAt !== 'number' || !Number.isSafeInteger(rawAt) || rawAt < 0) {
      throw bad('requestedAt', 'must be epoch milliseconds');
    }
    requestedAt = rawAt;
  }

  let source: TriggerSource = 'upstream';
  const rawSource = obj.source;
  if (rawSource !== undefined && rawSource !== null) {
    if (typeof rawSource !== 'string' || !(triggerSources as readonly string[]).includes(rawSource)) {
      throw bad('source', `must be one of ${triggerSources.join(', ')}`);
    }
    source = rawSource as TriggerSource;
  }

  return {
    triggerId,
    courseId,
    batchId,
    userIds,
    requestedBy,
    requestedAt,
    source,
    includeInactive: optionalBoolean(obj, 'includeInactive'),
    includeCompleted: optionalBoolean(obj, 'includeCompleted'),
  };
}
