import {
  CLI,
  exactlyOnce,
  perfect,
  randomBetween,
  run,
  seedBatch,
  TopicReader,
  World,
  type ProcessorProcess,
  type SeededBatch,
} from './harness';

/**
 * One 60,000-row whole-batch trigger (54,000 active users) expanded by three processor processes
 * together: split into token-range tasks over the task topic, each member expanding the tasks of
 * the partitions it owns. One member is killed with kill -9 midway; the others take its tasks
 * over from their checkpoints. Counted from outside; the status is asked of the CLI.
 */
const COURSE = 'do_fanout_course';
const BATCH = 'fanout_batch_60k';
const TXN_MAX_RECORDS = 2000;

let world: World;
let batch: SeededBatch;
let committed: TopicReader;
let uncommitted: TopicReader;
const processes: ProcessorProcess[] = [];

beforeAll(async () => {
  world = new World({ partitions: 3 });
  await world.migrate();
  batch = await seedBatch(world, { courseId: COURSE, batchId: BATCH, rows: 60000, inactiveEvery: 10 });
  [committed, uncommitted] = await Promise.all([
    TopicReader.start(world, world.topics.output, 'read_committed'),
    TopicReader.start(world, world.topics.output, 'read_uncommitted'),
  ]);
}, 180000);

afterAll(async () => {
  await world?.cleanup();
});

async function status(triggerId: string): Promise<Record<string, unknown> & { state?: string }> {
  const result = await run('node', [CLI, 'status', triggerId, '--json'], { env: world.childEnv() });
  if (result.code !== 0) return { error: result.stderr };
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

test('three processors share one whole-batch trigger; one killed with kill -9 midway: still every active user exactly once, and the status says done with the right counts', async () => {
  // Paced (1,500 events/s a process, so about 12 s in all): long enough to ask the status and to
  // kill a member midway.
  const env = {
    SYNC_READ_PLAN: 'scan',
    SYNC_PAGE_SIZE: '200',
    SYNC_MAX_EVENTS_PER_SECOND: '1500',
    SYNC_TXN_MAX_RECORDS: String(TXN_MAX_RECORDS),
  };
  for (const name of ['a', 'b', 'c']) processes.push(await world.startProcessor(name, env));
  await world.groupStable(3);
  const triggerId = `fan-${world.id}`;
  await world.sendTrigger({ triggerId, courseId: COURSE, batchId: BATCH });

  // Midway, every member is expanding tasks of its own; then one of them is killed.
  const fraction = randomBetween(0.35, 0.55);
  expect(await uncommitted.waitFor((r) => r.distinct >= fraction * batch.active.size, 120000)).toBe(true);
  const running = await status(triggerId);
  expect(running.state).toBe('running');
  const taskWork = (p: ProcessorProcess) =>
    p.linesMatching(/"topic":"[^"]*\.enrolment\.sync\.tasks"[^\n]*"msg":"partition restored"/).length;
  for (const p of processes)
    expect({ process: p.name, restoredTaskPartitions: taskWork(p) > 0 }).toEqual({
      process: p.name,
      restoredTaskPartitions: true,
    });
  const victim = processes[Math.floor(Math.random() * 3)] as ProcessorProcess;
  await victim.kill9();

  expect(await committed.waitFor((r) => r.distinct >= batch.active.size, 180000)).toBe(true);
  await Promise.all([committed.settle(3000, 15000), uncommitted.settle(3000, 15000)]);
  const redone = uncommitted.total - committed.total;

  let final = await status(triggerId);
  for (let i = 0; i < 50 && final.state !== 'done'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    final = await status(triggerId);
  }
  console.log(
    JSON.stringify({
      test: 'fan-out kill -9',
      killed: victim.name,
      atFraction: Number(fraction.toFixed(2)),
      committed: committed.total,
      redone,
      status: final,
    }),
  );
  expect(exactlyOnce(committed, batch.active)).toEqual(perfect(batch.active));
  // The survivors resumed the victim's tasks from checkpoints: at most one open transaction (a
  // transaction closes at the first page after TXN_MAX_RECORDS) per task partition it held.
  expect(redone).toBeLessThanOrEqual((TXN_MAX_RECORDS + 200) * 2);
  expect(final).toMatchObject({
    state: 'done',
    courseId: COURSE,
    batchId: BATCH,
    eventsProduced: batch.active.size,
    rowsRead: batch.rows,
    tasks: { done: 6, total: 6 },
  });
  for (const p of processes.filter((x) => x !== victim)) expect(p.alive).toBe(true);
}, 420000);
