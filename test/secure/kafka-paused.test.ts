import { randomBytes } from 'node:crypto';
import type { EnrolmentSyncService } from '../../src/service';
import {
  consumedRecord,
  createTestContext,
  readTopic,
  type ConsumedRecord,
  type TestContext,
} from '../helpers/context';
import { secureServers } from '../helpers/secure';
import { enrolment, patch, seed, startService } from '../helpers/service';

/**
 * The broker stops answering (SIGSTOP on the secured test Kafka, which this project owns) while
 * requests are being published. They time out with 503; the broker comes back; the client
 * retries. Exactly one trigger may be readable (read_committed, as the processor reads), even
 * though the timed-out publishes did reach the broker later.
 */
const servers = secureServers();
const COURSE = 'do_paused';
const BATCH = 'batch_paused';

async function readAll(ctx: TestContext, topic: string, readUncommitted: boolean): Promise<ConsumedRecord[]> {
  const consumer = ctx.kafka.consumer({ groupId: `paused-${randomBytes(4).toString('hex')}`, readUncommitted });
  const records: ConsumedRecord[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      records.push(consumedRecord(message, partition));
    },
  });
  await new Promise((resolve) => setTimeout(resolve, 6000));
  await consumer.disconnect();
  return records;
}

describe('a request that times out while Kafka is paused, retried by its client', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;

  beforeAll(async () => {
    ctx = await createTestContext(
      // No linger: the three requests below must go out as two sends (one per producer) and a
      // queued third, not share one send after the default 2 ms wait.
      servers.env({
        API_DEPENDENCY_TIMEOUT_MS: '2000',
        TOPIC_PARTITIONS: '1',
        API_PUBLISH_QUEUE_MAX: '1',
        API_PUBLISH_LINGER_MS: '0',
      }),
    );
    await seed(ctx, [enrolment('u1', COURSE, BATCH)]);
    service = await startService(ctx, { api: true, processor: false });
  });
  afterAll(async () => {
    await service?.stop();
    await ctx?.cleanup();
  });

  test('yields exactly one trigger', async () => {
    const url = `${service.url}/v1/content/state/update`;
    const request = { request: { userId: 'u1', batchId: BATCH, courseId: COURSE } };
    // Warm: the producers' transactions and the topic's partition leadership are known.
    const warm = await patch(url, request);
    expect(warm.status).toBe(200);

    const pid = servers.kafkaPid();
    process.kill(pid, 'SIGSTOP');
    let timedOut: Array<{ status: number; body: any }>;
    try {
      // Three at once: two are sent (one per API producer) and one waits in the queue.
      const three = Promise.all([patch(url, request), patch(url, request), patch(url, request)]);
      // The queue (API_PUBLISH_QUEUE_MAX=1) is full: a fourth is refused at once, not queued.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const started = Date.now();
      const refused = await fetch(url, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(request),
      });
      expect(Date.now() - started).toBeLessThan(500);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as any).params.errmsg).toMatch(/1 triggers are already waiting for Kafka/);
      timedOut = await three;
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    for (const res of timedOut) {
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ responseCode: 'SERVICE_UNAVAILABLE', params: { err: 'SERVICE_UNAVAILABLE' } });
    }

    // The client retries, as clients do, until it is answered.
    let retried = await patch(url, request);
    for (let i = 0; i < 10 && retried.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      retried = await patch(url, request);
    }
    expect(retried.status).toBe(200);

    const committed = await readAll(ctx, ctx.settings.topics.trigger, false);
    const ids = committed.map((r) => JSON.parse(r.value.toString()).triggerId);
    expect(ids).toEqual([warm.body.result.triggerId, retried.body.result.triggerId]);

    // The timed-out publishes did reach the broker after it resumed — and were aborted, so a
    // read_committed reader (the processor) never sees them.
    const everything = await readAll(ctx, ctx.settings.topics.trigger, true);
    expect(everything.length).toBeGreaterThan(committed.length);
    const ghosts = everything.filter((r) => !ids.includes(JSON.parse(r.value.toString()).triggerId));
    expect(ghosts.length).toBeGreaterThanOrEqual(1);
    expect(ghosts.length).toBeLessThanOrEqual(2);

    const rc = readTopic; // the shared helper reads read_committed too
    const again = await rc(ctx.kafka, ctx.settings.topics.trigger, { until: (r) => r.length >= 2, settleMs: 1000 });
    expect(again).toHaveLength(2);
  });
});
