import { readTopic, seedBatch, TopicReader, within, World, type SeededBatch } from './harness';

/**
 * A scan's checkpoint (and task) records carry the progress of every token range, and
 * SYNC_SCAN_RANGES is valid up to 65,536. Found with large range counts: the record outgrew the
 * broker's maximum message size (MESSAGE_TOO_LARGE); one build then retried forever on
 * OUT_OF_ORDER_SEQUENCE_NUMBER with nothing committed (24,576 ranges), a later one dead-lettered
 * the valid whole-batch trigger after five attempts (65,536 ranges). A valid setting must either
 * work or be refused by name: never a retry loop, never a valid trigger in the dead-letter topic.
 */
const COURSE = 'do_ranges_course';
const BATCH = 'ranges_batch';
const RANGES_ENV = { SYNC_READ_PLAN: 'scan', SYNC_SCAN_RANGES: '65536' };
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

test('SYNC_SCAN_RANGES=65536 (the largest valid value): events committed, or a refusal naming the setting; no oversized record, nothing dead-lettered', async () => {
  const committed = await TopicReader.start(world, world.topics.output, 'read_committed');
  const p = await world.spawnProcessor('ranges', RANGES_ENV);
  await world.sendTrigger({ triggerId: `t-${world.id}`, courseId: COURSE, batchId: BATCH });
  // Progress (a first committed event) or an exit, whichever comes first, within 45 s.
  const progress = committed.waitFor((r) => r.total > 0, 45000);
  const exit = await within(Promise.race([p.exited, progress.then(() => undefined)]), 46000);
  const dead = await readTopic(world, world.topics.deadLetter, { isolation: 'read_uncommitted', settleMs: 1000 });
  const oversized = p.linesMatching(TOO_LARGE).length;
  console.log(
    JSON.stringify({
      test: 'checkpoint size',
      exit: p.exit,
      events: committed.total,
      activeUsers: batch.active.size,
      oversizedErrors: oversized,
      deadLettered: dead.total,
      firstErrors: p.lines
        .filter((l) => Number(l.json?.level) >= 50)
        .slice(0, 2)
        .map((l) => String(l.json?.error ?? l.json?.msg).slice(0, 200)),
    }),
  );
  expect(dead.total).toBe(0);
  expect(oversized).toBe(0);
  if (exit) {
    // Refused: by name.
    expect(exit.code).not.toBe(0);
    const stderr = p.lines.filter((l) => l.stream === 'stderr').map((l) => l.raw);
    expect(stderr.some((t) => /SYNC_SCAN_RANGES/.test(t))).toBe(true);
  } else {
    expect(p.alive).toBe(true);
    expect(committed.total).toBeGreaterThan(0);
  }
}, 120000);
