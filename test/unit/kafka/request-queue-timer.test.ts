// kafkajs's request queue, as patched by patches/kafkajs+2.2.4.patch (applied on install): when
// nothing is throttled it scheduled its check `-Date.now()` ms ahead, which Node 24 reports as a
// TimeoutNegativeWarning on every connection (kafkajs#1751). The check must still run at once.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const RequestQueue = require('kafkajs/src/network/requestQueue') as new (options: object) => {
  scheduleCheckPendingRequests(): void;
  checkPendingRequests(): void;
  destroy(): void;
};

const silentLogger = { debug() {}, info() {}, warn() {}, error() {}, namespace: () => silentLogger };

describe('kafkajs request queue timer', () => {
  test('an unthrottled queue checks its pending requests after 1 ms, never asking for a negative delay', async () => {
    const delays: number[] = [];
    const realSetTimeout = global.setTimeout;
    const recording = ((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return realSetTimeout(fn, ms);
    }) as typeof setTimeout;
    global.setTimeout = recording;
    try {
      const queue = new RequestQueue({
        maxInFlightRequests: 1,
        requestTimeout: 1000,
        clientId: 't',
        broker: 'b',
        logger: silentLogger,
      });
      const checked = new Promise<void>((resolve) => {
        queue.checkPendingRequests = () => resolve();
      });
      queue.scheduleCheckPendingRequests();
      await checked;
      expect(delays).toEqual([1]);
      queue.destroy();
    } finally {
      global.setTimeout = realSetTimeout;
    }
  });
});
