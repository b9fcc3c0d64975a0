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
  type ProcessorProcess,
  type SeededBatch,
  type Server,
} from '../harness';

/**
 * One server (Kafka or Cassandra) stopped for ~20 s in the middle of a whole-batch expansion of
 * 49,500 active users, then started again, with `infra/services.sh down|up <server>` of this
 * checkout. An outage is not the trigger's fault: the processor waits it out (it stays alive,
 * dead-letters nothing), resumes from its checkpoint, and read_committed sees every active user
 * exactly once. The server is started again whatever happens (finally, and afterAll).
 *
 * Both Kafka clients (KAFKA_CLIENT) live through the same outage: one processor of each, side by
 * side, each with its own topics and consumer group (a world per client, one seeded keyspace) and
 * counted by its own read_committed reader. A server's stop and restart (20 s plus a JVM's start)
 * is most of the test's time, so one outage for both clients instead of one each takes CI about
 * as long as the slower client's run alone. The expansion is paced by small pages read one at a
 * time, so Cassandra, not the client, sets both processors' speed and they reach the stop together.
 */
export const OUTAGE_MS = 20000;
const TXN_MAX_RECORDS = 2000;
/** Outages abort the transaction open at the time, and perhaps one more attempted while it lasted. */
const REDONE_TRANSACTIONS = 3;
/** Every producer adapter the product ships (src/kafka/ports.ts), each with its own processor. */
const CLIENTS = ['kafkajs', 'confluent'] as const;
type Client = (typeof CLIENTS)[number];

/** One client's processor, its world and what was seen of it. */
interface Lane {
  client: Client;
  world: World;
  processor?: ProcessorProcess;
  progress?: TopicReader;
}

export function describeOutage(server: Server): void {
  const COURSE = `do_${server}_outage`;
  const BATCH = `${server}_outage_batch`;
  let lanes: Lane[] = [];
  let batch: SeededBatch;
  /** How long the set-up took, reported with the outage's own phases (CI's wall time is read from them). */
  let setUpMs = 0;

  beforeAll(async () => {
    const setUpAt = Date.now();
    await assertOwnServer(server);
    // One partition per topic: one transaction open at a time, so the bound on redone work is plain.
    const seeded = new World({ partitions: 1 });
    lanes = [{ client: CLIENTS[0], world: seeded }];
    for (const client of CLIENTS.slice(1)) {
      lanes.push({ client, world: new World({ partitions: 1, keyspaceOf: seeded }) });
    }
    // One after another: concurrent schema changes to one keyspace can leave Cassandra's nodes
    // disagreeing; the later migrations find the tables and add only their own topics.
    for (const lane of lanes) await lane.world.migrate();
    batch = await seedBatch(seeded, { courseId: COURSE, batchId: BATCH, rows: 55000, inactiveEvery: 10 });
    setUpMs = Date.now() - setUpAt;
  }, 240000);

  afterAll(async () => {
    // Whatever failed, the shared server runs again before anything else.
    if (!(await portOpen(SERVER_PORTS[server]))) await services('up', server);
    // The seeded world drops the keyspace: it goes last, after the processors reading it are gone.
    for (const { world } of [...lanes].reverse()) {
      await world.reconnectCassandra().catch(() => undefined);
      await world.cleanup();
    }
  }, 300000);

  test(`${server} stopped for ~${OUTAGE_MS / 1000} s mid-expansion, then started: a processor of each Kafka client waits and resumes; nothing dead-lettered, lost or duplicated`, async () => {
    const env = {
      SYNC_TXN_MAX_RECORDS: String(TXN_MAX_RECORDS),
      SYNC_READ_PLAN: 'scan',
      SYNC_PAGE_SIZE: '50',
      SYNC_SCAN_CONCURRENCY: '1',
    };
    await Promise.all(
      lanes.map(async (lane) => {
        lane.progress = await TopicReader.start(lane.world, lane.world.topics.output, 'read_uncommitted');
        lane.processor = await lane.world.startProcessor(`p-${lane.client}`, { ...env, KAFKA_CLIENT: lane.client });
      }),
    );
    const triggeredAt = Date.now();
    for (const { world } of lanes) {
      await world.sendTrigger({ triggerId: `t-${world.id}`, courseId: COURSE, batchId: BATCH });
    }
    const fraction = randomBetween(0.25, 0.45);
    const reached = await Promise.all(
      lanes.map((l) => l.progress?.waitFor((r) => r.distinct >= fraction * batch.active.size, 120000)),
    );
    const behind = lanes.filter((_, i) => !reached[i]);
    if (behind.length > 0) {
      const tails = behind.map((l) => `${l.client} (${l.progress?.distinct} users):\n${l.processor?.tail()}`);
      throw new Error(`expansion never reached ${Math.round(fraction * 100)}%: ${tails.join('\n')}`);
    }
    // Taken last, as the server goes down: the lane that got there first has gone on meanwhile.
    const producedAtStop = lanes.map((l) => l.progress?.distinct ?? 0);
    // Readers are started afresh after the outage; these would only fight the broker's absence.
    await Promise.all(lanes.map((l) => l.progress?.stop()));

    let stoppedFor: number;
    let aliveThroughOutage: boolean[];
    let portClosed: boolean;
    let restarted: { code: number; stdout: string; stderr: string } | undefined;
    let restartAt: number;
    const downAt = Date.now();
    const expandingMs = downAt - triggeredAt;
    try {
      const down = await services('down', server);
      if (down.code !== 0) throw new Error(`services.sh down ${server} failed:\n${down.stdout}\n${down.stderr}`);
      portClosed = !(await portOpen(SERVER_PORTS[server]));
      await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
      aliveThroughOutage = lanes.map((l) => l.processor?.alive === true);
      stoppedFor = Date.now() - downAt;
      restartAt = Date.now();
    } finally {
      restarted = await services('up', server);
    }
    if (restarted.code !== 0)
      throw new Error(`services.sh up ${server} failed:\n${restarted.stdout}\n${restarted.stderr}`);
    const upAt = Date.now();
    const restartMs = upAt - restartAt;

    const seen = await Promise.all(
      lanes.map(async ({ world }) => {
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
        return { committed, uncommitted, dead, finishedMs };
      }),
    );

    const observed = lanes.map((lane, i) => {
      const { committed, uncommitted, dead, finishedMs } = seen[i] as (typeof seen)[number];
      const p = lane.processor as ProcessorProcess;
      const redone = uncommitted.total - committed.total;
      const running = p.linesMatching(/"msg":"processor running"/).map((l) => l.json?.kafkaClient);
      console.log(
        JSON.stringify({
          test: `${server} outage`,
          client: lane.client,
          stopAt: `${Math.round(fraction * 100)}%`,
          producedAtStop: producedAtStop[i],
          stoppedFor,
          finishedMsAfterRestart: finishedMs,
          phasesMs: { setUp: setUpMs, triggerToStop: expandingMs, restart: restartMs, checked: Date.now() - upAt },
          committedEvents: committed.total,
          uncommittedEvents: uncommitted.total,
          redone,
          deadLettered: dead.total,
        }),
      );
      return {
        client: lane.client,
        // The processor produced with the client this lane stands for, and with no other.
        kafkaClients: [...new Set(running)],
        stoppedMidExpansion: (producedAtStop[i] ?? 0) < 0.9 * batch.active.size,
        aliveThroughOutage: aliveThroughOutage[i],
        aliveAfter: p.alive,
        deadLettered: dead.total,
        exactlyOnce: exactlyOnce(committed, batch.active),
        // Resumed, not restarted: a restart from the first user would redo everything before the stop.
        redoneWithinBound: redone <= REDONE_TRANSACTIONS * TXN_MAX_RECORDS,
        usersWithSeveralMids: usersWithSeveralMids(uncommitted),
      };
    });

    const expected = lanes.map(({ client }) => ({
      client,
      kafkaClients: [client],
      stoppedMidExpansion: true,
      aliveThroughOutage: true,
      aliveAfter: true,
      deadLettered: 0,
      exactlyOnce: perfect(batch.active),
      redoneWithinBound: true,
      usersWithSeveralMids: [],
    }));
    // A wrong count says what; the processor's own lines say why (its log file stays on the CI machine).
    lanes.forEach((lane, i) => {
      if (JSON.stringify(observed[i]) !== JSON.stringify(expected[i])) {
        console.log(`${lane.client} processor, its last lines:\n${lane.processor?.story()}`);
      }
    });
    expect(portClosed).toBe(true);
    expect(observed).toEqual(expected);
  }, 600000);
}
