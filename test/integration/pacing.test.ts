import { randomUUID } from 'node:crypto';
import type { EnrolmentSyncService } from '../../src/service';
import { createTestContext, readTopic, type TestContext } from '../helpers/context';
import { enrolment, seed, startService } from '../helpers/service';

const COURSE = 'do_course_pace';
const BATCH = 'batch_pace';
const USERS = 10_000;
const RATE = 2000;

describe('output pacing', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;

  beforeAll(async () => {
    ctx = await createTestContext({ SYNC_MAX_EVENTS_PER_SECOND: String(RATE), SYNC_READ_PLAN: 'scan' });
    await seed(
      ctx,
      Array.from({ length: USERS }, (_, i) => enrolment(`pace-${i}`, COURSE, BATCH)),
      [[COURSE, BATCH]],
    );
    service = await startService(ctx, { api: false, processor: true });
  });
  afterAll(async () => {
    await service.stop();
    await ctx.cleanup();
  });

  test(`SYNC_MAX_EVENTS_PER_SECOND=${RATE}: ${USERS} events take at least ${(USERS - RATE / 10) / RATE} s, spread evenly; the ETA reflects the pace`, async () => {
    const triggerId = randomUUID();
    const started = Date.now();
    const producer = ctx.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: ctx.settings.topics.trigger,
      acks: -1,
      messages: [{ key: triggerId, value: JSON.stringify({ triggerId, courseId: COURSE, batchId: BATCH }) }],
    });
    await producer.disconnect();
    let etaSeen: number | undefined;
    for (;;) {
      const status = await service.triggerStatus(triggerId);
      if (status?.state === 'running' && status.etaSeconds !== undefined && status.progress! < 0.5)
        etaSeen ??= status.etaSeconds;
      if (status?.state === 'done') break;
      if (Date.now() - started > 60000) throw new Error(`not done: ${JSON.stringify(status)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const elapsed = (Date.now() - started) / 1000;
    const out = await readTopic(ctx.kafka, ctx.settings.topics.output, {
      until: (r) => r.length >= USERS,
      settleMs: 500,
    });
    expect(out).toHaveLength(USERS);
    expect(elapsed).toBeGreaterThanOrEqual(4.5);
    // Spread: in no second of the run did more than the rate (plus one slice of slack) go out.
    const first = Math.min(...out.map((r) => r.timestamp));
    const perSecond = new Map<number, number>();
    for (const r of out) {
      const second = Math.floor((r.timestamp - first) / 1000);
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
    }
    // (Two slices of send jitter allowed.)
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(RATE * 1.25);
    expect(perSecond.size).toBeGreaterThanOrEqual(5);
    // Early in the run the ETA already says "several seconds" at this pace.
    expect(etaSeen).toBeGreaterThanOrEqual(2);
  });
});
