import {
  exactlyOnce,
  otherRows,
  perfect,
  seedBatch,
  SESSION_TIMEOUT_MS,
  sleep,
  TopicReader,
  World,
  type SeededBatch,
} from './harness';

/**
 * A whole-batch trigger over a sparse batch (95% of its 30,000 rows inactive) read by
 * token-range scan: long stretches of the scan produce nothing, and the processor must stay in
 * its group anyway (heartbeats on a timer, not after output). The scan is made to outlast the
 * session timeout by reading one range at a time in pages of 10 rows: every page is a round
 * trip, as it would be over a table many times this size. How long 3,000 round trips take
 * depends on the machine (3 to 11 ms each, measured on a busy and on an overloaded one), so the
 * output pace sets a floor that does not: 1,500 events at 100 a second take 15 s, 2.5 session
 * timeouts. Seeding 160,000 rows to make the scan long enough used to cost more than the scan.
 */
const COURSE = 'do_sparse_course';
const BATCH = 'sparse_batch';
const ROWS = 30000;
const OTHER_ROWS = 2000;
const SCAN_ENV = {
  SYNC_READ_PLAN: 'scan',
  SYNC_PAGE_SIZE: '10',
  SYNC_SCAN_CONCURRENCY: '1',
  SYNC_MAX_EVENTS_PER_SECOND: '100',
};
/** Log messages that mean the member lost its place in the group. */
const EVICTED = /rebalanc|re-?join|evict|UNKNOWN_MEMBER_ID|not a member|member.*(removed|expired)|abandon/i;

let world: World;
let batch: SeededBatch;

beforeAll(async () => {
  // One partition per topic: the scan runs in one piece, not split across parallel tasks.
  world = new World({ partitions: 1 });
  await world.migrate();
  batch = await seedBatch(world, { courseId: COURSE, batchId: BATCH, rows: ROWS, activeEvery: 20 });
  await world.seed(otherRows(OTHER_ROWS));
}, 300000);

afterAll(async () => {
  await world?.cleanup();
});

test(`a scan of a 95%-inactive batch that lasts longer than the session timeout (${SESSION_TIMEOUT_MS} ms) is not evicted: one member throughout, nothing aborted, exactly once`, async () => {
  const [committed, uncommitted] = await Promise.all([
    TopicReader.start(world, world.topics.output, 'read_committed'),
    TopicReader.start(world, world.topics.output, 'read_uncommitted'),
  ]);
  const p = await world.startProcessor('sparse', SCAN_ENV);
  await world.groupStable(1);

  // The group as the coordinator sees it, every 250 ms: an evicted member comes back with a new id.
  const memberIds = new Set<string>();
  const states = new Set<string>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const group = await world.groupMembers().catch(() => undefined);
      if (group) {
        states.add(group.state);
        for (const m of group.members) memberIds.add(m.memberId);
        if (group.members.length === 0) memberIds.add('(none)');
      }
      await sleep(250);
    }
  })();

  const sentAt = Date.now();
  await world.sendTrigger({ triggerId: `t-${world.id}`, courseId: COURSE, batchId: BATCH });
  await committed.waitFor((r) => r.distinct >= batch.active.size, 180000);
  const scanMs = committed.lastRecordAt - sentAt;
  await Promise.all([committed.settle(3000, 15000), uncommitted.settle(3000, 15000)]);
  watching = false;
  await watcher;

  const evictionLines = p.lines
    .map((l) => (l.json ? String(l.json.msg ?? l.json.message ?? '') : l.raw))
    .filter((text) => EVICTED.test(text));
  console.log(
    JSON.stringify({
      test: 'sparse scan',
      tableRows: batch.rows + OTHER_ROWS,
      activeUsers: batch.active.size,
      scanMs,
      memberIds: [...memberIds],
      states: [...states],
      committedEvents: committed.total,
      uncommittedEvents: uncommitted.total,
      evictionLines: evictionLines.slice(0, 5),
    }),
  );
  // The precondition of the test: the scan did outlast the session timeout, by half again.
  expect(scanMs).toBeGreaterThan(1.5 * SESSION_TIMEOUT_MS);
  expect(p.alive).toBe(true);
  expect(memberIds.size).toBe(1);
  expect([...states]).toEqual(['Stable']);
  expect(evictionLines).toEqual([]);
  expect(exactlyOnce(committed, batch.active)).toEqual(perfect(batch.active));
  // Nothing was aborted and redone.
  expect(uncommitted.total).toBe(committed.total);
}, 300000);
