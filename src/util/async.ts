import { SyncError } from '../errors';

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortError(signal?: AbortSignal): SyncError {
  const reason = signal?.reason instanceof Error ? signal.reason.message : 'aborted';
  return new SyncError('SYNC_ABORTED', reason, { retriable: false });
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortError(signal);
}

/** Rejects with SYNC_TIMEOUT (or the given error) when `promise` takes longer than `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Maps items with at most `concurrency` calls of `fn` running at once; results keep input order. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

/**
 * Runs several async sources at once (at most `concurrency`), yielding their items as they come.
 * Bounded: a source waits while `capacity` items sit unconsumed, so memory stays flat however
 * large the sources are. The first error stops everything and is thrown to the consumer; a
 * consumer that stops early stops the sources at their next item.
 */
export async function* mergeBounded<T>(
  sources: ReadonlyArray<() => AsyncIterable<T>>,
  concurrency: number,
  capacity: number,
): AsyncGenerator<T> {
  const queue: T[] = [];
  let failure: { error: unknown } | undefined;
  let closed = false;
  let active = 0;
  let nextSource = 0;
  let wakeConsumer: (() => void) | undefined;
  const waitingProducers: Array<() => void> = [];

  const notifyConsumer = (): void => {
    const wake = wakeConsumer;
    wakeConsumer = undefined;
    wake?.();
  };
  const releaseProducers = (): void => {
    while (waitingProducers.length > 0 && (queue.length < capacity || closed)) waitingProducers.shift()?.();
  };

  const worker = async (): Promise<void> => {
    while (!closed && failure === undefined && nextSource < sources.length) {
      const source = sources[nextSource++] as () => AsyncIterable<T>;
      for await (const item of source()) {
        if (closed || failure !== undefined) return;
        while (queue.length >= capacity && !closed) {
          await new Promise<void>((resolve) => waitingProducers.push(resolve));
        }
        if (closed) return;
        queue.push(item);
        notifyConsumer();
      }
    }
  };

  const workers = Math.min(concurrency, sources.length);
  for (let i = 0; i < workers; i++) {
    active++;
    worker()
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => {
        active--;
        notifyConsumer();
      });
  }

  try {
    for (;;) {
      if (failure !== undefined) throw failure.error;
      if (queue.length > 0) {
        const item = queue.shift() as T;
        releaseProducers();
        yield item;
        continue;
      }
      if (active === 0) return;
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
    }
  } finally {
    closed = true;
    releaseProducers();
  }
}

/**
 * An amount shared by several producers, such as the rows every reader of the process may hold
 * ahead of its consumer. take() waits until the amount is free, first come first served, so a
 * busy reader cannot starve another; an amount larger than the whole budget is granted when
 * nothing else is held, so it cannot wait forever.
 */
export class Budget {
  private used = 0;
  private readonly waiting: Array<{ amount: number; grant: () => void }> = [];

  constructor(readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  async take(amount: number, signal?: AbortSignal): Promise<void> {
    if (signal) throwIfAborted(signal);
    if (this.waiting.length === 0 && this.fits(amount)) {
      this.used += amount;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const entry = {
        amount,
        grant: (): void => {
          signal?.removeEventListener('abort', onAbort);
          this.used += amount;
          resolve();
        },
      };
      const onAbort = (): void => {
        const at = this.waiting.indexOf(entry);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(abortError(signal));
        // The one that left may have been what held the next in line back.
        this.grantWaiting();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  give(amount: number): void {
    this.used = Math.max(0, this.used - amount);
    this.grantWaiting();
  }

  private fits(amount: number): boolean {
    return this.used === 0 || this.used + amount <= this.capacity;
  }

  private grantWaiting(): void {
    for (let next = this.waiting[0]; next !== undefined && this.fits(next.amount); next = this.waiting[0]) {
      this.waiting.shift();
      next.grant();
    }
  }
}
