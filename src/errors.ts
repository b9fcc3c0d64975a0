/**
 * One error type for the whole product. Code further in branches on `code` and `retriable`,
 * never on `instanceof`: jest runs test files in separate realms, where `instanceof` lies.
 */
export const errorCodes = [
  'SYNC_CONFIG',
  'SYNC_BAD_REQUEST',
  'SYNC_BAD_TRIGGER',
  'SYNC_NOT_FOUND',
  'SYNC_CASSANDRA_UNAVAILABLE',
  'SYNC_KAFKA_UNAVAILABLE',
  'SYNC_REGISTRY_UNAVAILABLE',
  'SYNC_INVALID_EVENT',
  'SYNC_TIMEOUT',
  'SYNC_ABORTED',
  'SYNC_CASSANDRA_REQUEST_FAILED',
  'SYNC_KAFKA_REQUEST_FAILED',
  'SYNC_UNAUTHORIZED',
  'SYNC_FENCED',
  /** A TLS handshake failed: an untrusted or mismatched certificate, TLS spoken to a plaintext port. */
  'SYNC_TLS',
  /** Too much work in flight (API requests, queued trigger publishes); retriable after a pause. */
  'SYNC_OVERLOADED',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/**
 * What the runtime does about an error, decided once from its code:
 * - outage: a dependency is unreachable; wait and retry for as long as it lasts, never dead-letter;
 * - transient: one request failed (a read timeout); retry a bounded number of times, then
 *   dead-letter the input with the reason;
 * - bad-input: the input itself is wrong; dead-letter at once;
 * - fatal: configuration, schema or permissions; stop consuming and exit non-zero;
 * - fenced: another instance now owns the partition; drop the work, it continues there;
 * - aborted: we are stopping or giving the partition up.
 */
export type ErrorKind = 'outage' | 'transient' | 'bad-input' | 'fatal' | 'fenced' | 'aborted';

const kindOfCode: Readonly<Record<ErrorCode, ErrorKind>> = {
  SYNC_CONFIG: 'fatal',
  SYNC_UNAUTHORIZED: 'fatal',
  SYNC_BAD_REQUEST: 'bad-input',
  SYNC_BAD_TRIGGER: 'bad-input',
  SYNC_NOT_FOUND: 'bad-input',
  SYNC_INVALID_EVENT: 'bad-input',
  SYNC_CASSANDRA_UNAVAILABLE: 'outage',
  SYNC_KAFKA_UNAVAILABLE: 'outage',
  SYNC_REGISTRY_UNAVAILABLE: 'outage',
  SYNC_CASSANDRA_REQUEST_FAILED: 'transient',
  SYNC_KAFKA_REQUEST_FAILED: 'transient',
  SYNC_TIMEOUT: 'transient',
  SYNC_FENCED: 'fenced',
  SYNC_ABORTED: 'aborted',
  SYNC_TLS: 'fatal',
  SYNC_OVERLOADED: 'transient',
};

export interface SyncErrorOptions {
  retriable: boolean;
  cause?: unknown;
  /** The field or variable the error is about, when there is one (shown to API and CLI users). */
  field?: string;
}

export class SyncError extends Error {
  readonly retriable: boolean;
  readonly field: string | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    opts: SyncErrorOptions,
  ) {
    super(message, { cause: opts.cause });
    this.name = 'SyncError';
    this.retriable = opts.retriable;
    this.field = opts.field;
  }
}

export function isSyncError(err: unknown): err is SyncError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'SyncError' &&
    typeof (err as { code?: unknown }).code === 'string'
  );
}

/**
 * Errors we did not translate (a bug, an unexpected library error) count as transient: retried a
 * few times, then the input is dead-lettered with the reason rather than halting the partition.
 */
export function errorKind(err: unknown): ErrorKind {
  return isSyncError(err) ? kindOfCode[err.code] : 'transient';
}

/** Anything not known to be permanent is worth another try; bad input is not. */
export function isRetriable(err: unknown): boolean {
  if (isSyncError(err)) return err.retriable;
  if (typeof err === 'object' && err !== null && 'retriable' in err) {
    return Boolean((err as { retriable: unknown }).retriable);
  }
  return false;
}

export function errorCodeOf(err: unknown): string {
  if (isSyncError(err)) return err.code;
  if (typeof err === 'object' && err !== null && 'name' in err) return String((err as { name: unknown }).name);
  return 'UNKNOWN';
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
