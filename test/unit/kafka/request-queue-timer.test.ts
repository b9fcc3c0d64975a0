// kafkajs's request queue, as patched by patches/kafkajs+2.2.4.patch (applied on install). After
// every response it checks for requests waiting to be sent and scheduled the next check, even with
// none waiting: `-Date.now()` ms ahead when nothing was throttled, which Node runs after 1 ms (and
// Node 24 reports as a TimeoutNegativeWarning, kafkajs#1751). That check scheduled the next one,
// so every connection ran a timer each millisecond for its whole life. Now a check is scheduled
// only for a request that waits, and never for a negative delay.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const RequestQueue = require('kafkajs/src/network/requestQueue') as new (options: object) => {
  pending: unknown[];
  scheduleCheckPendingRequests(): void;
  checkPendingRequests(): void;
  destroy(): void;
};

const silentLogger = { debug() {}, info() {}, warn() {}, error() {}, namespace: () => silentLogger };

function newQueue() {
  return new RequestQueue({
    maxInFlightRequests: 1,
    requestTimeout: 1000,
    clientId: 't',
    broker: 'b',
    logger: silentLogger,
  });
}

/** Runs `fn` with setTimeout recording the delays asked for. */
async function recordingTimers(fn: (delays: number[]) => Promise<void>): Promise<void> {
  const delays: number[] = [];
  const realSetTimeout = global.setTimeout;
  global.setTimeout = ((callback: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    return realSetTimeout(callback, ms);
  }) as typeof setTimeout;
  try {
    await fn(delays);
  } finally {
    global.setTimeout = realSetTimeout;
  }
}

describe('kafkajs request queue timer', () => {
  test('with nothing waiting, a check (as after every response) schedules no further check', async () => {
    await recordingTimers(async (delays) => {
      const queue = newQueue();
      queue.checkPendingRequests();
      queue.scheduleCheckPendingRequests();
      await new Promise((r) => setImmediate(r));
      expect(delays).toEqual([]);
      queue.destroy();
    });
  });

  test('a request waiting in an unthrottled queue is checked after 10 ms, never a negative delay', async () => {
    await recordingTimers(async (delays) => {
      const queue = newQueue();
      queue.pending.push({});
      const checked = new Promise<void>((resolve) => {
        queue.checkPendingRequests = () => resolve();
      });
      queue.scheduleCheckPendingRequests();
      await checked;
      expect(delays).toEqual([10]);
      queue.pending.length = 0;
      queue.destroy();
    });
  });
});
