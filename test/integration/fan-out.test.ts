import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import type { SeedEnrolment } from '../../src/cassandra/seed';
import type { EnrolmentSyncService } from '../../src/service';
import type { ProcessedEvent } from '../../src/streams/runtime';
import type { TriggerStatus } from '../../src/streams/status';
import { createTestContext, readAll, type TestContext } from '../helpers/context';
import { enrolment, seed, startService } from '../helpers/service';

const COURSE = 'do_course_f';
const BATCH = 'batch_f';
const USERS = 20_000;

async function waitForStatus(
  service: EnrolmentSyncService,
  triggerId: string,
  until: (s: TriggerStatus) => boolean,
  timeoutMs = 60000,
): Promise<TriggerStatus[]> {
  const seen: TriggerStatus[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await service.triggerStatus(triggerId);
    if (status) seen.push(status);
    if (status && until(status)) return seen;
    if (Date.now() > deadline) throw new Error(`status of ${triggerId}: ${JSON.stringify(status)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * One whole-batch trigger expanded by the whole group: split into token-range tasks that every
 * member takes a share of, exactly once, with a status any member can answer.
 */
describe('fan-out over the group, trigger status, coalescing', () => {
  let ctx: TestContext;
  let producer: Producer;
  const services: EnrolmentSyncService[] = [];
  const processedBy = new Map<number, ProcessedEvent[]>();
  const active = new Set<string>();

  beforeAll(async () => {
    ctx = await createTestContext({
      TOPIC_PARTITIONS: '3',
      SYNC_READ_PLAN: 'scan',
      SYNC_FAN_OUT_TASKS: '9',
      SYNC_PAGE_SIZE: '500',
      SYNC_TXN_MAX_RECORDS: '2000',
      SYNC_SESSION_TIMEOUT_MS: '10000',
      SYNC_HEARTBEAT_INTERVAL_MS: '1000',
    });
    const rows: SeedEnrolment[] = [];
    for (let i = 0; i < USERS; i++) {
      const userId = `f-${i}`;
      const inactive = i % 10 === 0;
      rows.push(enrolment(userId, COURSE, BATCH, { active: !inactive }));
      if (!inactive) active.add(userId);
    }
    for (let i = 0; i < 5000; i++) rows.push(enrolment(`other-${i}`, COURSE, 'other_batch'));
    await seed(ctx, rows, [[COURSE, BATCH]]);
    for (let i = 0; i < 3; i++) {
      const service = await startService(ctx, { api: false, processor: true });
      processedBy.set(i, []);
      service.processorRuntime?.events.on('processed', (e: ProcessedEvent) => processedBy.get(i)?.push(e));
      services.push(service);
    }
    producer = ctx.kafka.producer();
    await producer.connect();
  });

  afterAll(async () => {
    await producer.disconnect();
    for (const service of services) await service.stop();
    await ctx.cleanup();
  });

  test('three processors share one whole-batch trigger: each expands tasks, the union is every active user once, the status says done', async () => {
    // The group settled on three members before the trigger arrives: each start returned once its
    // member had joined, and the third's join is a generation of all three. Checked, not slept on.
    const { groups } = await ctx.admin.describeGroups([ctx.settings.processor.groupId]);
    expect(groups[0]).toMatchObject({ state: 'Stable' });
    expect(groups[0]?.members).toHaveLength(3);
    const triggerId = `fan-${randomUUID()}`;
    await producer.send({
      topic: ctx.settings.topics.trigger,
      acks: -1,
      messages: [{ key: `${COURSE}|${BATCH}`, value: JSON.stringify({ triggerId, courseId: COURSE, batchId: BATCH }) }],
    });
    const seen = await waitForStatus(services[0]!, triggerId, (s) => s.state === 'done');
    const final = seen[seen.length - 1]!;
    expect(final).toMatchObject({
      state: 'done',
      courseId: COURSE,
      batchId: BATCH,
      eventsProduced: active.size,
      tasks: { done: 9, total: 9 },
      progress: 1,
    });
    expect(final.rowsRead).toBe(USERS);
    expect(final.finishedAt).toBeGreaterThanOrEqual(final.startedAt!);
    // It was seen running on the way, with counts rising.
    const running = seen.filter((s) => s.state === 'running');
    expect(running.length).toBeGreaterThan(0);

    // Done: every task's events were committed in the transaction that reported it, so what is
    // committed now is all there will be; reading to the end offsets needs no idle wait.
    const out = await readAll(ctx.kafka, ctx.admin, ctx.settings.topics.output);
    expect(out).toHaveLength(active.size);
    expect(new Set(out.map((r) => r.key))).toEqual(active);

    // Every member expanded a share of the tasks.
    const tasksPerMember = [...processedBy.values()].map(
      (events) => events.filter((e) => e.topic === ctx.settings.topics.tasks).length,
    );
    expect(tasksPerMember.reduce((a, b) => a + b, 0)).toBe(9);
    expect(tasksPerMember.every((n) => n > 0)).toBe(true);

    // Any member answers for the trigger.
    for (const service of services) expect((await service.triggerStatus(triggerId))?.state).toBe('done');
  });

  test('a second whole-batch trigger for a batch still running joins the running one', async () => {
    const first = `first-${randomUUID()}`;
    const second = `second-${randomUUID()}`;
    const send = (triggerId: string) =>
      producer.send({
        topic: ctx.settings.topics.trigger,
        acks: -1,
        messages: [
          { key: `${COURSE}|${BATCH}`, value: JSON.stringify({ triggerId, courseId: COURSE, batchId: BATCH }) },
        ],
      });
    await send(first);
    await send(second);
    const joined = await waitForStatus(services[1]!, second, (s) => s.state === 'joined');
    expect(joined[joined.length - 1]).toMatchObject({ state: 'joined', joinedTo: first, eventsProduced: 0 });
    await waitForStatus(services[2]!, first, (s) => s.state === 'done');
    // A finished trigger does not block a new one.
    const third = `third-${randomUUID()}`;
    await send(third);
    const done = await waitForStatus(services[0]!, third, (s) => s.state === 'done' || s.state === 'joined');
    expect(done[done.length - 1]).toMatchObject({ state: 'done', eventsProduced: active.size });
  });

  test('an unknown trigger has no status', async () => {
    expect(await services[0]!.triggerStatus('no-such-trigger')).toBeUndefined();
  });
});
