import { SyncError } from '../../../src/errors';
import { backoffDelay, retry } from '../../../src/streams/retry';

const fast = { retries: 3, initialDelayMs: 1, maxDelayMs: 4 };

describe('retry', () => {
  test('backoff doubles up to the cap, with jitter in the upper half', () => {
    const settings = { retries: 0, initialDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(0, settings, () => 0)).toBe(50);
    expect(backoffDelay(0, settings, () => 1)).toBe(100);
    expect(backoffDelay(3, settings, () => 1)).toBe(800);
    expect(backoffDelay(10, settings, () => 1)).toBe(1000);
  });

  test('bad input is not retried', async () => {
    let calls = 0;
    const bad = new SyncError('SYNC_BAD_TRIGGER', 'bad', { retriable: false });
    await expect(
      retry(async () => {
        calls++;
        throw bad;
      }, fast),
    ).rejects.toBe(bad);
    expect(calls).toBe(1);
  });

  test('a retriable error gets `retries` more tries, then is thrown', async () => {
    let calls = 0;
    const timeout = new SyncError('SYNC_TIMEOUT', 'slow', { retriable: true });
    await expect(
      retry(async () => {
        calls++;
        throw timeout;
      }, fast),
    ).rejects.toBe(timeout);
    expect(calls).toBe(4);
  });

  test('an outage is retried for as long as it lasts, and stops when aborted', async () => {
    let calls = 0;
    const controller = new AbortController();
    const outage = new SyncError('SYNC_CASSANDRA_UNAVAILABLE', 'down', { retriable: true });
    const result = retry(
      async () => {
        calls++;
        if (calls === 20) controller.abort(new Error('stop'));
        throw outage;
      },
      { ...fast, signal: controller.signal },
    );
    await expect(result).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
    expect(calls).toBe(20);
  });

  test('succeeds once the dependency is back', async () => {
    let calls = 0;
    const value = await retry(async () => {
      calls++;
      if (calls < 3) throw new SyncError('SYNC_KAFKA_UNAVAILABLE', 'down', { retriable: true });
      return 'ok';
    }, fast);
    expect(value).toBe('ok');
  });
});
