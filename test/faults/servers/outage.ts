import {
  assertOwnServer,
  exactlyOnce,
  perfect,
  portOpen,
  randomBetween,
  readTopic,
  seedBatch,
  SERVER_PORTS,
  services,
  sleep,
  TopicReader,
  usersWithSeveralMids,
  World,
  type SeededBatch,
  type Server,
} from '../harness';

/**
 * One server (Kafka or Cassandra) stopped for ~20 s in the middle of a whole-batch expansion of
 * 49,500 active users, then started again, with `infra/services.sh down|up <server>` of this
 * checkout. An outage is not the trigger's fault: the processor waits it out (it stays alive,
 * dead-letters nothing), resumes from its checkpoint, and read_committed sees every active user
 * exactly once. The server is started again whatever happens (finally, and afterAll).
 */
export const OUTAGE_MS = 20000;
const TXN_MAX_RECORDS = 2000;
/** Outages abort the transaction open at the time, and perhaps one more attempted while it lasted. */
const REDONE_TRANSACTIONS = 3;

export function describeOutage(server: Server): void {
  const COURSE = `do_${server}_outage`;
  const BATCH = `${server}_outage_batch`;
  let world: World;
  let batch: SeededBatch;

  beforeAll(async () => {
    await assertOwnServer(server);
    // One partition per topic: one transaction open at a time, so the bound on redone work is plain.
    world = new World({ partitions: 1 });
    await world.migrate();
    batch = await seedBatch(world, { courseId: COURSE, batchId: BATCH, rows: 55000, inactiveEvery: 10 });
  }, 240000);

  afterAll(async () => {
    // Whatever failed, the shared server runs again before anything else.
    if (!(await portOpen(SERVER_PORTS[server]))) await services('up', server);
    if (world) {
      await world.reconnectCassandra().catch(() => undefined);
      await world.cleanup();
    }
  }, 300000);

  test(`${server} stopped for ~${OUTAGE_MS / 1000} s mid-expansion, then started: the processor waits and resumes; nothing dead-lettered, lost or duplicated`, async () => {
    const env = {
      SYNC_TXN_MAX_RECORDS: String(TXN_MAX_RECORDS),
      SYNC_READ_PLAN: 'scan',
      SYNC_PAGE_SIZE: '50',
      SYNC_SCAN_CONCURRENCY: '1',
    };
    const progress = await TopicReader.start(world, world.topics.output, 'read_uncommitted');
    const p = await world.startProcessor('p', env);
    await world.sendTrigger({ triggerId: `t-${world.id}`, courseId: COURSE, batchId: BATCH });
    const fraction = randomBetween(0.25, 0.45);
    const reached = await progress.waitFor((r) => r.distinct >= fraction * batch.active.size, 120000);
    if (!reached) throw new Error(`expansion never reached ${Math.round(fraction * 100)}%:\n${p.tail()}`);
    const producedAtStop = progress.distinct;
    // Readers are started afresh after the outage; this one would only fight the broker's absence.
    await progress.stop();

    let stoppedFor: number;
    let aliveThroughOutage: boolean;
    let portClosed: boolean;
    let restarted: { code: number; stdout: string; stderr: string } | undefined;
    const downAt = Date.now();
    try {
      const down = await services('down', server);
      if (down.code !== 0) throw new Error(`services.sh down ${server} failed:\n${down.stdout}\n${down.stderr}`);
      portClosed = !(await portOpen(SERVER_PORTS[server]));
      await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
      aliveThroughOutage = p.alive;
      stoppedFor = Date.now() - downAt;
    } finally {
      restarted = await services('up', server);
    }
    if (restarted.code !== 0)
      throw new Error(`services.sh up ${server} failed:\n${restarted.stdout}\n${restarted.stderr}`);
    const upAt = Date.now();

    const committed = await readTopic(world, world.topics.output, {
      until: (r) => r.distinct >= batch.active.size,
      timeoutMs: 240000,
      settleMs: 3000,
    });
    const finishedMs = Date.now() - upAt;
    const uncommitted = await readTopic(world, world.topics.output, {
      isolation: 'read_uncommitted',
      until: (r) => r.total >= committed.total,
      timeoutMs: 60000,
      settleMs: 2000,
    });
    const dead = await readTopic(world, world.topics.deadLetter, { isolation: 'read_uncommitted', settleMs: 2000 });
    const redone = uncommitted.total - committed.total;
    console.log(
      JSON.stringify({
        test: `${server} outage`,
        stopAt: `${Math.round(fraction * 100)}%`,
        producedAtStop,
        stoppedFor,
        finishedMsAfterRestart: finishedMs,
        committedEvents: committed.total,
        uncommittedEvents: uncommitted.total,
        redone,
        deadLettered: dead.total,
      }),
    );

    expect(portClosed).toBe(true);
    expect(producedAtStop).toBeLessThan(0.9 * batch.active.size);
    expect(aliveThroughOutage).toBe(true);
    expect(p.alive).toBe(true);
    expect(dead.total).toBe(0);
    expect(exactlyOnce(committed, batch.active)).toEqual(perfect(batch.active));
    // Resumed, not restarted: a restart from the first user would redo everything before the stop.
    expect(redone).toBeLessThanOrEqual(REDONE_TRANSACTIONS * TXN_MAX_RECORDS);
    expect(usersWithSeveralMids(uncommitted)).toEqual([]);
  }, 600000);
}
