import { exactlyOnce, perfect, seedBatch, sleep, TopicReader, within, World, type SeededBatch } from './harness';

/**
 * A scan's checkpoint records the progress of every token range, and SYNC_SCAN_RANGES is valid up
 * to 65,536. With 24,576 ranges the checkpoint record once outgrew the broker's maximum message
 * size (MESSAGE_TOO_LARGE); every later transaction then failed with OUT_OF_ORDER_SEQUENCE_NUMBER
 * and the trigger was retried from its start forever, not one event committed. A valid setting
 * must either work or be refused at start-up by name; it must never spin.
 */
const COURSE = 'do_ranges_course';
const BATCH = 'ranges_batch';
const RANGES_ENV = { SYNC_READ_PLAN: 'scan', SYNC_SCAN_RANGES: '24576' };

let world: World;
let batch: SeededBatch;

beforeAll(async () => {
  world = new World();
  await world.migrate();
  batch = await seedBatch(world, { courseId: COURSE, batchId: BATCH, rows: 2000, inactiveEvery: 10 });
}, 120000);

afterAll(async () => {
  await world?.cleanup();
});

test('SYNC_SCAN_RANGES=24576: the whole batch exactly once, or a start-up refusal naming the setting; never a retry loop', async () => {
  const committed = await TopicReader.start(world, world.topics.output, 'read_committed');
  const p = await world.spawnProcessor('ranges', RANGES_ENV);
  await world.sendTrigger({ triggerId: `t-${world.id}`, courseId: COURSE, batchId: BATCH });
  const done = committed.waitFor((r) => r.distinct >= batch.active.size, 60000);
  const exit = await within(Promise.race([p.exited, done.then(() => undefined)]), 65000);
  await sleep(500);
  const retries = p.linesMatching(/out of order sequence|MESSAGE_TOO_LARGE|message larger than/i).length;
  console.log(
    JSON.stringify({
      test: 'checkpoint size',
      exit: p.exit,
      events: committed.total,
      retries,
      firstErrors: p.lines
        .filter((l) => Number(l.json?.level) >= 50)
        .slice(0, 2)
        .map((l) => String(l.json?.error ?? l.json?.msg).slice(0, 200)),
    }),
  );
  if (exit) {
    // Refused: by name, before doing anything.
    expect(exit.code).not.toBe(0);
    expect(
      p.lines
        .filter((l) => l.stream === 'stderr')
        .map((l) => l.raw)
        .join('\n'),
    ).toMatch(/SYNC_SCAN_RANGES/);
    expect(committed.total).toBe(0);
  } else {
    await committed.settle(2000, 10000);
    expect(p.alive).toBe(true);
    expect(exactlyOnce(committed, batch.active)).toEqual(perfect(batch.active));
    expect(retries).toBe(0);
  }
}, 180000);
