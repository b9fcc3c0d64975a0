import type { RetrySettings } from '../config';
import { isRetriable, isSyncError } from '../errors';
import { sleep } from '../util/async';

export interface RetryOptions extends RetrySettings {
  signal?: AbortSignal;
  /** Called before each wait; a place to heartbeat and log. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void | Promise<void>;
}

/**
 * An outage of a whole dependency is retried for as long as it lasts: no input is at fault, and
 * dead-lettering every trigger during an outage would only move the problem. Anything else
 * retriable gets `retries` more tries; what is not retriable is thrown at once.
 */
export function isOutage(err: unknown): boolean {
  return (
    isSyncError(err) &&
    (err.code === 'SYNC_CASSANDRA_UNAVAILABLE' ||
      err.code === 'SYNC_KAFKA_UNAVAILABLE' ||
      err.code === 'SYNC_REGISTRY_UNAVAILABLE')
  );
}

export function backoffDelay(attempt: number, settings: RetrySettings, random = Math.random): number {
  const ceiling = Math.min(settings.maxDelayMs, settings.initialDelayMs * 2 ** Math.min(attempt, 30));
  // "Equal jitter": never less than half the ceiling, so retries do spread out but never hammer.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isRetriable(err)) throw err;
      if (!isOutage(err) && attempt >= options.retries) throw err;
      const delay = backoffDelay(attempt, options);
      await options.onRetry?.(err, attempt + 1, delay);
      await sleep(delay, options.signal);
    }
  }
}
