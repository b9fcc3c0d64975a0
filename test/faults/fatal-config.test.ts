import { exactlyOnce, perfect, seedBatch, sleep, TopicReader, within, World, type SeededBatch } from './harness';

/**
 * A Cassandra error that is not an outage: the processor is forced onto the batchid index
 * (SYNC_READ_PLAN=index) and the index has been dropped. That is the operator's to fix, not the
 * trigger's fault: the processor stops with a message naming the cause and a non-zero exit
 * code, dead-letters nothing, and leaves the trigger for the processor that runs once the index
 * is back.
 */
const COURSE = 'do_fatal_course';
const BATCH = 'fatal_batch';
const INDEX = 'user_enrolments_batchid_idx';
const INDEX_ENV = { SYNC_READ_PLAN: 'index' };

let world: World;
let batch: SeededBatch;

beforeAll(async () => {
  world = new World();
  await world.migrate();
  batch = await seedBatch(world, { courseId: COURSE, batchId: BATCH, rows: 2000, inactiveEvery: 10 });
  await world.cassandra.execute(`DROP INDEX IF EXISTS ${world.keyspace}.${INDEX}`);
}, 120000);

afterAll(async () => {
  await world?.cleanup();
});

test('SYNC_READ_PLAN=index without the batchid index: exit non-zero with a message naming the cause; nothing dead-lettered, nothing produced', async () => {
  const p = await world.spawnProcessor('forced-plan', INDEX_ENV);
  // It may refuse at start-up or at the first whole-batch trigger; the trigger is there either way.
  await world.sendTrigger({ triggerId: `t-${world.id}`, courseId: COURSE, batchId: BATCH });
  const exit = await within(p.exited, 90000);
  // The cause, in an error-level log line or the closing plain-text line on stderr.
  const errorLines = p.lines
    .filter((l) => l.stream === 'stderr' && (!l.json || Number(l.json.level) >= 50))
    .map((l) => l.raw);
  const namesCause = errorLines.some((t) => /index/i.test(t) && /batchid|SYNC_READ_PLAN/i.test(t));
  const [dead, output] = await Promise.all([
    TopicReader.start(world, world.topics.deadLetter, 'read_uncommitted'),
    TopicReader.start(world, world.topics.output, 'read_uncommitted'),
  ]);
  await sleep(3000);
  console.log(JSON.stringify({ test: 'fatal config', exit, errorLines: errorLines.map((t) => t.slice(0, 200)) }));

  expect(exit).toBeDefined();
  expect(exit?.signal).toBeNull();
  expect(exit?.code).not.toBe(0);
  expect(namesCause).toBe(true);
  expect(dead.total).toBe(0);
  expect(output.total).toBe(0);
  await dead.stop();
  await output.stop();
}, 150000);

test('once the index is back, the same trigger is expanded: the fatal stop skipped nothing', async () => {
  await world.cassandra.execute(
    `CREATE INDEX IF NOT EXISTS ${INDEX} ON ${world.keyspace}.user_enrolments (batchid) USING 'sai'`,
  );
  // SAI builds the index in the background; queries on it fail until it is queryable.
  const deadline = Date.now() + 60000;
  for (;;) {
    try {
      await world.cassandra.execute(
        `SELECT userid FROM ${world.keyspace}.user_enrolments WHERE batchid = ? LIMIT 1`,
        [BATCH],
        { prepare: true },
      );
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
  const committed = await TopicReader.start(world, world.topics.output, 'read_committed');
  const p = await world.startProcessor('plan-restored', INDEX_ENV);
  await committed.waitFor((r) => r.distinct >= batch.active.size, 60000);
  await committed.settle(2000, 10000);
  const dead = await TopicReader.start(world, world.topics.deadLetter, 'read_uncommitted');
  await sleep(1000);

  expect(p.alive).toBe(true);
  expect(exactlyOnce(committed, batch.active)).toEqual(perfect(batch.active));
  expect(dead.total).toBe(0);
}, 150000);
