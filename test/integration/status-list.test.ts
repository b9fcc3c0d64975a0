import { statusKey, statusMessage, type StatusPart } from '../../src/streams/status';
import { StatusStore } from '../../src/streams/status-store';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * StatusStore.list over a real status topic: unfinished triggers first, then the newest finished
 * ones, bounded twice (the query's limit, and how many finished triggers the store keeps listing), and
 * a finished trigger that starts again (a new part arrives) moves back to the unfinished.
 */
describe('status list from the compacted status topic (real Kafka)', () => {
  let ctx: TestContext;
  let store: StatusStore;

  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(async () => {
    await store?.stop();
    await ctx?.cleanup();
  });

  const trigger = (id: string, extra: Partial<StatusPart>): StatusPart =>
    ({
      part: 'trigger',
      triggerId: id,
      state: 'running',
      produced: 0,
      rowsRead: 0,
      startedAt: 1000,
      updatedAt: 1000,
      ...extra,
    }) as StatusPart;

  async function write(parts: StatusPart[]): Promise<void> {
    const producer = ctx.kafka.producer();
    await producer.connect();
    const partitions = (await ctx.admin.fetchTopicMetadata({ topics: [ctx.settings.topics.status] })).topics[0]!
      .partitions.length;
    await producer.send({
      topic: ctx.settings.topics.status,
      messages: parts.map((p) => statusMessage(partitions, statusKey(p.triggerId, 'trigger'), p)),
    });
    await producer.disconnect();
  }

  test('running first (newest started first), then the newest finished, within both bounds', async () => {
    // Five finished at 10…50 s, two running (started at 5 and 7 s), one failed at 60 s.
    const finished = [1, 2, 3, 4, 5].map((n) =>
      trigger(`done-${n}`, { state: 'done', startedAt: n * 1000, finishedAt: n * 10000, updatedAt: n * 10000 }),
    );
    await write([
      ...finished,
      trigger('run-old', { startedAt: 5000 }),
      trigger('run-new', { startedAt: 7000 }),
      trigger('failed-1', { state: 'failed', finishedAt: 60000, error: { code: 'SYNC_BAD_TRIGGER', message: 'x' } }),
    ]);
    // Remembers the newest three finished triggers only.
    store = new StatusStore(ctx.kafka, ctx.admin, ctx.settings.topics.status, ctx.log, `list-${ctx.id}`, 100, 0, 3);
    await store.start();

    const ids = async (q: Parameters<StatusStore['list']>[0]) => (await store.list(q)).map((s) => s.triggerId);
    expect(await ids({ limit: 50 })).toEqual(['run-new', 'run-old', 'failed-1', 'done-5', 'done-4']);
    expect(await ids({ limit: 3 })).toEqual(['run-new', 'run-old', 'failed-1']);
    expect(await ids({ limit: 50, states: ['done'] })).toEqual(['done-5', 'done-4']);
    expect(await ids({ limit: 50, states: ['failed'] })).toEqual(['failed-1']);
    expect((await store.list({ limit: 50, states: ['failed'] }))[0]).toMatchObject({ deadLetters: 1 });

    // done-5 is taken up again (a new running part): unfinished again. done-3 stays forgotten:
    // the bound drops the oldest finished for good (the topic still has them, and get() folds them).
    await write([trigger('done-5', { state: 'running', startedAt: 9000 })]);
    expect(await ids({ limit: 50 })).toEqual(['done-5', 'run-new', 'run-old', 'failed-1', 'done-4']);
    expect(await store.get('done-3')).toMatchObject({ state: 'done' });
  });
});
