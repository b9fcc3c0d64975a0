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
  /** A server rejected our credentials (SASL, Cassandra password, registry basic auth). Not retriable. */
  'SYNC_AUTH_FAILED',
  /** A TLS handshake failed: an untrusted or mismatched certificate, TLS spoken to a plaintext port. Not retriable. */
  'SYNC_TLS',
  /** Too much work in flight (API requests, queued trigger publishes); retriable after a pause. */
  'SYNC_OVERLOADED',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

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
