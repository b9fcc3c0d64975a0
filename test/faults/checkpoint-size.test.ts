import { readTopic, seedBatch, TopicReader, within, World, type SeededBatch } from './harness';

/**
 * A scan's checkpoint (and task) records carry the progress of every token range. When
 * SYNC_SCAN_RANGES was valid up to 65,536, large range counts broke it: the record outgrew the
 * broker's maximum message size (MESSAGE_TOO_LARGE); one build then retried forever on
 * OUT_OF_ORDER_SEQUENCE_NUMBER with nothing committed (24,576 ranges), a later one dead-lettered
 * the valid whole-batch trigger after five attempts (65,536 ranges). It is now capped at 4,096: the
 * largest valid value must work, a larger one must be refused by name; never a retry loop, never
 * a valid trigger in the dead-letter topic.
 */
const COURSE = 'do_ranges_course';
const BATCH = 'ranges_batch';
const LARGEST_VALID = { SYNC_READ_PLAN: 'scan', SYNC_SCAN_RANGES: '4096' };
const TOO_LARGE = /out of order sequence|MESSAGE_TOO_LARGE|message larger than/i;

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

test('SYNC_SCAN_RANGES=4096 (the largest valid value): every active user once; no oversized record, nothing dead-lettered', async () => {
  const committed = await TopicReader.start(world, world.topics.output, 'read_committed');
  const p = await world.spawnProcessor('ranges', LARGEST_VALID);
  await world.sendTrigger({ triggerId: `t-${world.id}`, courseId: COURSE, batchId: BATCH });
  await committed.waitFor((r) => r.total >= batch.active.size, 90000);
  await new Promise((r) => setTimeout(r, 1500));
  const dead = await readTopic(world, world.topics.deadLetter, { isolation: 'read_uncommitted', settleMs: 1000 });
  expect(dead.total).toBe(0);
  expect(p.linesMatching(TOO_LARGE)).toHaveLength(0);
  expect(p.alive).toBe(true);
  expect(committed.total).toBe(batch.active.size);
}, 150000);

test('SYNC_SCAN_RANGES beyond the cap is refused at start, naming the setting', async () => {
  const p = await world.spawnProcessor('too-many-ranges', { ...LARGEST_VALID, SYNC_SCAN_RANGES: '65536' });
  const exit = await within(p.exited, 30000);
  expect(exit?.code).toBe(2);
  const stderr = p.lines.filter((l) => l.stream === 'stderr').map((l) => l.raw);
  expect(stderr.some((t) => /SYNC_SCAN_RANGES must be a whole number from 1 to 4096/.test(t))).toBe(true);
}, 60000);
