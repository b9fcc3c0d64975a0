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
  /**
   * The enrolments of `userIds` as the trigger's producer read them (the API does, to answer
   * `notEnrolled`). Left out: the processor reads them from Cassandra itself, as it always did.
   * See CarriedEnrolments for when the processor trusts them.
   */
  enrolments?: CarriedEnrolments | null;
}

/** One enrolment row as the producer read it: exactly what the policy looks at. */
export interface CarriedEnrolment {
  userId: string;
  /** null: the column was never written (legacy rows), which counts as active. */
  active: boolean | null;
  status: number | null;
}

/**
 * Enrolments a trigger carries so that the processor does not read Cassandra a second time for
 * rows its producer read milliseconds earlier (the API reads every request's users to answer
 * `notEnrolled`; that second read was about a quarter of what a request cost the whole box:
 * docs/benchmarks.md, "API at scale, second pass").
 *
 * Trust: triggers arrive on an ACL'd topic from trusted producers. Whoever can write a trigger can
 * already make the processor emit events for any enrolled user, so carried rows grant nothing new:
 * the processor still applies the trigger's policy to them, emits only for users the trigger
 * lists, and a malformed value (a row for a user not listed, a user twice, a wrong type) sends
 * the trigger to the dead-letter topic with the field named. Operators who do not want to trust
 * them set SYNC_CARRIED_ENROLMENTS_MAX_AGE_MS=0.
 *
 * Staleness: rows read `readAt` are used while they are at most that old (5 minutes by default)
 * by the processor's clock; older ones (a processor that was down or far behind, a dead letter
 * replayed) are read again, as before. Within that window a row that changed after the read is
 * treated as the processor's own read treats a row that changes while a trigger expands: it may
 * or may not be included (README, Guarantees).
 */
export interface CarriedEnrolments {
  /** When they were read, epoch ms. */
  readAt: number;
  /** One per enrolled user found, each one of the trigger's userIds; a listed user without a row is not enrolled. */
  rows: CarriedEnrolment[];
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

// Avro's int: what the Avro form of the trigger can carry, so the JSON form takes the same.
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** The optional `enrolments` field; undefined when it is left out or null. */
function parseCarriedEnrolments(value: unknown, userIds: readonly string[] | null): CarriedEnrolments | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw bad('enrolments', 'must be an object {readAt, rows} or null');
  }
  if (userIds === null) throw bad('enrolments', 'may only come with userIds (a whole-batch trigger carries none)');
  const obj = value as Record<string, unknown>;
  const readAt = obj.readAt;
  if (typeof readAt !== 'number' || !Number.isInteger(readAt) || readAt < 0 || readAt > MAX_EPOCH_MS) {
    throw bad('enrolments.readAt', `must be epoch milliseconds, got ${describeValue(readAt)}`);
  }
  if (!Array.isArray(obj.rows)) throw bad('enrolments.rows', 'must be a list of enrolment rows');
  const listed = new Set(userIds);
  const seen = new Set<string>();
  const rows = (obj.rows as unknown[]).map((raw, i): CarriedEnrolment => {
    const field = `enrolments.rows[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(field, 'must be an object');
    const row = raw as Record<string, unknown>;
    const userId = row.userId;
    if (typeof userId !== 'string' || !listed.has(userId)) {
      throw bad(`${field}.userId`, `must be one of userIds, got ${describeValue(userId)}`);
    }
    if (seen.has(userId)) throw bad(`${field}.userId`, `names ${describeValue(userId)} a second time`);
    seen.add(userId);
    const active = row.active ?? null;
    if (active !== null && typeof active !== 'boolean') throw bad(`${field}.active`, 'must be true, false or null');
    const status = row.status ?? null;
    if (
      status !== null &&
      (typeof status !== 'number' || !Number.isInteger(status) || status < INT32_MIN || status > INT32_MAX)
    ) {
      throw bad(`${field}.status`, `must be an integer or null, got ${describeValue(status)}`);
    }
    return { userId, active, status };
  });
  return { readAt, rows };
}

/** Dates the event time may take: 1970 up to the end of year 9999, as epoch milliseconds. */
const MAX_EPOCH_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * yyyy-MM-dd, then optionally a time (T or a space), seconds, a fraction after '.', ',' or ':'
 * (Sunbird writes `05:58:04:382`), and an offset Z, ±HH, ±HHMM or ±HH:MM.
 */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,:](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$/;

/**
 * requestedAt as upstream services write it: epoch milliseconds (a number or a string of digits),
 * ISO-8601, or Sunbird's `2021-03-04 05:58:04:382+0000`. Returns epoch ms, or undefined when the
 * value is none of these. Pure and independent of the machine's time zone (a time without an
 * offset is UTC), because ets is derived from it and the same trigger must give the same events
 * on every processor. A fraction finer than milliseconds is cut to whole milliseconds.
 */
export function parseRequestedAt(value: unknown): number | undefined {
  if (typeof value === 'number') return epochMs(value);
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^\d{1,16}$/.test(text)) return epochMs(Number(text));
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Number((m[7] ?? '').slice(0, 3).padEnd(3, '0'));
  const offsetHours = Number(m[10] ?? 0);
  const offsetMinutes = Number(m[11] ?? 0);
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined;
  const sign = m[9] === '-' ? -1 : 1;
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  return epochMs(utc - sign * (offsetHours * 60 + offsetMinutes) * 60000);
}

function epochMs(n: number): number | undefined {
  if (!Number.isFinite(n)) return undefined;
  const ms = Math.trunc(n);
  return ms >= 0 && ms <= MAX_EPOCH_MS ? ms : undefined;
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function describeValue(value: unknown): string {
  const text = typeof value === 'string' ? `'${value.slice(0, 64)}'` : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
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
    const parsed = parseRequestedAt(rawAt);
    if (parsed === undefined) {
      throw bad(
        'requestedAt',
        `must be epoch milliseconds, an ISO-8601 time or Sunbird's 'yyyy-MM-dd HH:mm:ss:SSSZ', got ${describeValue(rawAt)}`,
      );
    }
    requestedAt = parsed;
  }

  let source: TriggerSource = 'upstream';
  const rawSource = obj.source;
  if (rawSource !== undefined && rawSource !== null) {
    if (typeof rawSource !== 'string' || !(triggerSources as readonly string[]).includes(rawSource)) {
      throw bad('source', `must be one of ${triggerSources.join(', ')}`);
    }
    source = rawSource as TriggerSource;
  }

  const enrolments = parseCarriedEnrolments(obj.enrolments, userIds);
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
    ...(enrolments && { enrolments }),
  };
}
