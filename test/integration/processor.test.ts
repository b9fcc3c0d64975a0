import { randomUUID } from 'node:crypto';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import type { Producer } from 'kafkajs';
import { DEAD_LETTER_HEADERS } from '../../src/streams/dead-letter';
import { loadAvroSchema, syncEventAvroType, TRIGGER_SCHEMA_FILE } from '../../src/schemas';
import type { SeedEnrolment } from '../../src/cassandra/seed';
import { EnrolmentReader, type BatchReadReport } from '../../src/cassandra/enrolments';
import { loadConfig } from '../../src/config';
import type { EnrolmentSyncService } from '../../src/service';
import type { ProcessedEvent } from '../../src/streams/runtime';
import {
  createTestContext,
  headerText,
  readAll,
  readTopic,
  type ConsumedRecord,
  type TestContext,
} from '../helpers/context';
import { enrolment, seed, startService } from '../helpers/service';

const COURSE = 'do_course_p';
const BATCH = 'batch_p';

async function sendTrigger(
  producer: Producer,
  topic: string,
  value: Buffer | string,
  headers?: Record<string, string>,
) {
  await producer.send({ topic, acks: -1, messages: [{ key: randomUUID(), value, headers }] });
}

function parseEvents(records: ConsumedRecord[]) {
  return records.map((r) => ({ key: r.key, event: JSON.parse(r.value.toString()) }));
}

/** A context on a keyspace of its describe block's: only its topics are its own to delete. */
async function cleanupBorrowing(own: TestContext) {
  await own.admin.deleteTopics({
    topics: Object.values(own.settings.topics).filter((t): t is string => typeof t === 'string'),
  });
  await own.admin.disconnect();
  await own.cassandra.shutdown();
}

describe('processor: triggers from upstream, poison input, ids of every shape', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;
  let producer: Producer;
  const oddIds = [
    `o'brien "quoted"`,
    'back\\slash\\',
    'ünïcödé-用户-🎓',
    'with spaces  inside',
    "it's'; DROP TABLE x; --",
  ];

  beforeAll(async () => {
    ctx = await createTestContext();
    const rows: SeedEnrolment[] = [
      enrolment('a1', COURSE, BATCH),
      enrolment('a2', COURSE, BATCH, { status: 2 }),
      enrolment('a3', COURSE, BATCH, { active: false }),
      ...oddIds.map((id) => enrolment(id, COURSE, BATCH)),
      enrolment('a1', COURSE, 'other_batch'),
    ];
    await seed(ctx, rows);
    service = await startService(ctx, { api: false, processor: true });
    producer = ctx.kafka.producer();
    await producer.connect();
  });
  afterAll(async () => {
    await producer.disconnect();
    await service.stop();
    await ctx.cleanup();
  });

  test('garbage goes to the dead-letter topic with its headers, and the next valid trigger is still processed', async () => {
    const { trigger, deadLetter, output } = ctx.settings.topics;
    const garbage = Buffer.from([0xff, 0xfe, 0x00, 0x13, 0x37]);
    await sendTrigger(producer, trigger, garbage, { 'x-origin': 'fuzzer' });
    await sendTrigger(producer, trigger, '{"courseId": "c"'); // truncated JSON
    await sendTrigger(producer, trigger, JSON.stringify({ courseId: COURSE, batchId: 42 })); // wrong type
    await sendTrigger(producer, trigger, Buffer.from([0, 0, 0, 0x7f, 0x7f, 1, 2, 3])); // unknown schema id
    await sendTrigger(
      producer,
      trigger,
      JSON.stringify({ courseId: COURSE, batchId: BATCH, userIds: ['a1'], triggerId: 'after-garbage' }),
    );

    const dead = await readTopic(ctx.kafka, deadLetter, { until: (r) => r.length >= 4, settleMs: 200 });
    expect(dead).toHaveLength(4);
    const first = dead.find((d) => d.value.equals(garbage));
    expect(first).toBeDefined();
    expect(headerText(first!.headers, 'x-origin')).toBe('fuzzer');
    expect(headerText(first!.headers, DEAD_LETTER_HEADERS.code)).toBe('SYNC_BAD_TRIGGER');
    expect(headerText(first!.headers, DEAD_LETTER_HEADERS.topic)).toBe(trigger);
    expect(headerText(first!.headers, DEAD_LETTER_HEADERS.partition)).toMatch(/^\d+$/);
    expect(headerText(first!.headers, DEAD_LETTER_HEADERS.offset)).toMatch(/^\d+$/);
    const reasons = dead.map((d) => headerText(d.headers, DEAD_LETTER_HEADERS.message) ?? '');
    expect(reasons.some((m) => /malformed JSON/.test(m))).toBe(true);
    expect(reasons.some((m) => /batchId must be a string/.test(m))).toBe(true);
    expect(reasons.some((m) => /schema id 32639/.test(m))).toBe(true);
    expect(dead.map((d) => headerText(d.headers, DEAD_LETTER_HEADERS.field))).toContain('batchId');

    const out = await readTopic(ctx.kafka, output, { until: (r) => r.some((x) => x.key === 'a1'), settleMs: 300 });
    expect(parseEvents(out).filter((e) => e.key === 'a1' && e.event.edata.batchId === BATCH)).toHaveLength(1);

    // Each input's time is observed, by outcome: what the runbook's "slow expansion" alert reads.
    const expandSeconds = (await service.metrics.registry.getSingleMetric('sync_trigger_expand_seconds')?.get())
      ?.values;
    const count = (outcome: string) =>
      expandSeconds?.find(
        (v) =>
          (v as { metricName?: string }).metricName === 'sync_trigger_expand_seconds_count' &&
          v.labels.outcome === outcome,
      )?.value ?? 0;
    expect(count('dead-lettered')).toBeGreaterThanOrEqual(4);
    expect(count('done')).toBeGreaterThanOrEqual(1);
  });

  test('a JSON trigger and an Avro wire-format trigger both expand; ids with quotes, backslashes, unicode and spaces come through intact', async () => {
    const { trigger, output } = ctx.settings.topics;
    await sendTrigger(
      producer,
      trigger,
      JSON.stringify({ courseId: COURSE, batchId: BATCH, userIds: oddIds, requestedBy: 'svc' }),
    );

    const { id } = await ctx.registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(loadAvroSchema(TRIGGER_SCHEMA_FILE)) },
      { subject: `${trigger}-value` },
    );
    const avroTrigger = await ctx.registry.encode(id, {
      triggerId: 'avro-1',
      courseId: COURSE,
      batchId: BATCH,
      userIds: ['a2', 'a3'],
      requestedBy: 'upstream-svc',
      requestedAt: Date.now(),
      source: 'upstream',
      includeInactive: true,
      includeCompleted: null,
    });
    expect(avroTrigger[0]).toBe(0);
    await sendTrigger(producer, trigger, avroTrigger);

    const wanted = [...oddIds, 'a2', 'a3'];
    const out = parseEvents(
      await readTopic(ctx.kafka, output, {
        until: (r) => wanted.every((u) => r.some((x) => x.key === u)),
        settleMs: 500,
      }),
    );
    for (const userId of oddIds) {
      const mine = out.filter((e) => e.key === userId);
      expect(mine).toHaveLength(1);
      expect(mine[0]!.event.edata.userId).toBe(userId);
      expect(mine[0]!.event.object.id).toBe(`${BATCH}_${userId}`);
      expect(syncEventAvroType().isValid(mine[0]!.event)).toBe(true);
    }
    // The Avro trigger asked for inactive users too: a3 is inactive but included.
    expect(out.filter((e) => e.key === 'a3')).toHaveLength(1);
    expect(out.filter((e) => e.key === 'a2')).toHaveLength(1);
  });
});

describe('processor: a burst of single-user triggers', () => {
  test('300 triggers sent at once each yield exactly their one event (expanded together, nothing lost or doubled)', async () => {
    const ctx = await createTestContext({ TOPIC_PARTITIONS: '2' });
    const users = Array.from({ length: 300 }, (_, i) => `burst-${i}`);
    await seed(ctx, [
      ...users.map((u) => enrolment(u, COURSE, BATCH)),
      enrolment('inactive', COURSE, BATCH, { active: false }),
    ]);
    const producer = ctx.kafka.producer();
    await producer.connect();
    // Sent before the processor starts, so they sit in the topic and arrive in large fetches.
    await producer.send({
      topic: ctx.settings.topics.trigger,
      acks: -1,
      messages: [
        ...users.map((u) => ({ key: u, value: JSON.stringify({ courseId: COURSE, batchId: BATCH, userIds: [u] }) })),
        { key: 'x', value: JSON.stringify({ courseId: COURSE, batchId: BATCH, userIds: ['inactive', 'ghost'] }) },
        { key: 'y', value: 'not json at all' },
      ],
    });
    const service = await startService(ctx, { api: false, processor: true });
    try {
      const out = await readTopic(ctx.kafka, ctx.settings.topics.output, {
        until: (r) => r.length >= users.length,
        settleMs: 1500,
      });
      const keys = out.map((r) => r.key as string).sort();
      expect(keys).toEqual([...users].sort());
      const dead = await readTopic(ctx.kafka, ctx.settings.topics.deadLetter, {
        until: (r) => r.length >= 1,
        settleMs: 300,
      });
      expect(dead.map((d) => d.value.toString())).toEqual(['not json at all']);
    } finally {
      await producer.disconnect();
      await service.stop();
      await ctx.cleanup();
    }
  });
});

describe('processor: whole batch among many other rows', () => {
  const TARGET_USERS = 10_000;
  const OTHER_ROWS = 100_000;
  let ctx: TestContext;
  let expected: Set<string>;

  beforeAll(async () => {
    ctx = await createTestContext({ TOPIC_PARTITIONS: '4' });
    const rows: SeedEnrolment[] = [];
    expected = new Set();
    for (let i = 0; i < TARGET_USERS; i++) {
      const userId = `user-${i}`;
      const active = i % 9 !== 0;
      rows.push(enrolment(userId, COURSE, BATCH, { active, status: i % 5 === 0 ? 2 : 1 }));
      if (active) expected.add(userId);
    }
    // Other batches of the same course, the same batch id under another course, and users of the
    // target batch enrolled elsewhere: none of these may leak into the output.
    for (let i = 0; i < OTHER_ROWS; i++) {
      const userId = i % 4 === 0 ? `user-${i % TARGET_USERS}` : `other-${i}`;
      const courseId = i % 3 === 0 ? COURSE : `do_course_${i % 50}`;
      const batchId = i % 7 === 0 && courseId !== COURSE ? BATCH : `batch_${i % 200}`;
      rows.push(enrolment(userId, courseId, batchId));
    }
    await seed(ctx, rows, [[COURSE, BATCH]]);
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  test.each([
    ['index', { SYNC_INDEX_PROBE_ROWS: '20000', SYNC_INDEX_PROBE_MS: '60000' }],
    // A large factor says a scan is cheap (it reads many table rows per index row), a small one says it is dear.
    ['index+scan', { SYNC_INDEX_PROBE_ROWS: '700', SYNC_PAGE_SIZE: '500', SYNC_INDEX_COST_FACTOR: '1000000' }],
    ['index+index', { SYNC_INDEX_PROBE_ROWS: '700', SYNC_PAGE_SIZE: '500', SYNC_INDEX_COST_FACTOR: '1' }],
    ['scan', { SYNC_READ_PLAN: 'scan' }],
  ])('the reader takes plan %s when told to, and reads every row of the batch once', async (plan, env) => {
    const settings = loadConfig({ CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace, ...env });
    const reader = new EnrolmentReader(ctx.cassandra, settings.cassandra.keyspace, settings.processor);
    const reports: BatchReadReport[] = [];
    const seen: string[] = [];
    const pages = reader.readBatch(COURSE, BATCH, new AbortController().signal, { report: (r) => reports.push(r) });
    for await (const page of pages) seen.push(...page.rows.map((r) => r.userId));
    expect(reports.map((r) => r.plan)).toEqual([plan]);
    expect(seen).toHaveLength(TARGET_USERS);
    expect(new Set(seen).size).toBe(TARGET_USERS);
  });

  // The index gives rows several times slower than a scan: a batch that is clearly a scan's is
  // handed over after the probe's first 1,000 rows, not after SYNC_INDEX_PROBE_ROWS.
  test.each([
    ['a scan is clearly cheaper', '1000000', 'index+scan', 1000],
    ['the index is cheaper', '1', 'index+index', 5000],
  ])('when %s (cost factor %s) the plan is %s after a probe of %i rows', async (_what, factor, plan, probed) => {
    const settings = loadConfig({
      CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace,
      SYNC_INDEX_PROBE_ROWS: '5000',
      SYNC_INDEX_PROBE_MS: '60000',
      SYNC_PAGE_SIZE: '3000',
      SYNC_INDEX_COST_FACTOR: factor,
    });
    const reader = new EnrolmentReader(ctx.cassandra, settings.cassandra.keyspace, settings.processor);
    const reports: BatchReadReport[] = [];
    const pages: Array<{ rows: number; plan: string }> = [];
    const seen = new Set<string>();
    const read = reader.readBatch(COURSE, BATCH, new AbortController().signal, { report: (r) => reports.push(r) });
    for await (const page of read) {
      pages.push({ rows: page.rows.length, plan: page.position.plan });
      for (const r of page.rows) seen.add(r.userId);
    }
    expect(reports.map((r) => r.plan)).toEqual([plan]);
    const probePages = pages.filter((p) => p.plan === 'probe');
    // The first page is 1,000 rows whatever SYNC_PAGE_SIZE; then pages of 3,000, the last cut to
    // end at the probe's 5,000.
    expect(probePages[0]?.rows).toBe(1000);
    expect(probePages.reduce((n, p) => n + p.rows, 0)).toBe(probed);
    expect(reports[0]?.reason).toContain(`probe read ${probed} rows`);
    expect(seen.size).toBe(TARGET_USERS);
  });

  test.each([
    ['index', { SYNC_INDEX_PROBE_ROWS: '20000', SYNC_INDEX_PROBE_MS: '60000' }],
    ['scan', { SYNC_READ_PLAN: 'scan' }],
  ])('a %s read decodes only the columns asked for; the others come back null', async (_plan, env) => {
    const settings = loadConfig({ CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace, ...env });
    const reader = new EnrolmentReader(ctx.cassandra, settings.cassandra.keyspace, settings.processor);
    const read = async (columns?: { active: boolean; status: boolean }) => {
      const rows = [];
      for await (const page of reader.readBatch(COURSE, BATCH, new AbortController().signal, { columns })) {
        rows.push(...page.rows);
      }
      return rows;
    };
    const all = await read();
    expect(all).toHaveLength(TARGET_USERS);
    expect(all.filter((r) => r.status === 2)).toHaveLength(TARGET_USERS / 5);
    expect(all.filter((r) => r.active === false)).toHaveLength(Math.ceil(TARGET_USERS / 9));
    const activeOnly = await read({ active: true, status: false });
    expect(activeOnly.every((r) => r.status === null)).toBe(true);
    expect(activeOnly.filter((r) => r.active === false)).toHaveLength(Math.ceil(TARGET_USERS / 9));
    const statusOnly = await read({ active: false, status: true });
    expect(statusOnly.every((r) => r.active === null)).toBe(true);
    expect(statusOnly.filter((r) => r.status === 2)).toHaveLength(TARGET_USERS / 5);
  });

  // The three ways of reading a batch must give the same answer: the index alone, a scan alone,
  // and the index probe handing over to a scan part-way round the ring.
  const plans: Array<[string, Record<string, string>]> = [
    ['auto (the index probe reads the whole batch)', { SYNC_INDEX_PROBE_ROWS: '20000', SYNC_INDEX_PROBE_MS: '60000' }],
    ['auto with the default probe', {}],
    ['scan', { SYNC_READ_PLAN: 'scan' }],
    [
      'auto, switching to scan after a small probe',
      { SYNC_INDEX_PROBE_ROWS: '700', SYNC_PAGE_SIZE: '500', SYNC_INDEX_COST_FACTOR: '1000000' },
    ],
    [
      'auto, continuing on the index after a small probe',
      { SYNC_INDEX_PROBE_ROWS: '700', SYNC_PAGE_SIZE: '500', SYNC_INDEX_COST_FACTOR: '1' },
    ],
  ];
  // Side by side: each run has its own topics and group, and most of its time is waiting (group
  // join, the settle time), so five at once cost little more than one.
  test.concurrent.each(plans)('%s: exactly the active users of the batch, once each', async (_name, env) => {
    const own = await createTestContext({
      ...env,
      CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace,
      TOPIC_PARTITIONS: '4',
    });
    const service = await startService(own, { api: false, processor: true });
    const producer = own.kafka.producer();
    try {
      await producer.connect();
      await sendTrigger(
        producer,
        own.settings.topics.trigger,
        JSON.stringify({ courseId: COURSE, batchId: BATCH, source: 'batch' }),
      );
      const out = await readTopic(own.kafka, own.settings.topics.output, {
        until: (r) => r.length >= expected.size,
        timeoutMs: 60000,
        settleMs: 1500,
      });
      const keys = out.map((r) => r.key as string);
      expect(keys.length).toBe(expected.size);
      expect(new Set(keys).size).toBe(expected.size);
      expect(keys.every((k) => expected.has(k))).toBe(true);
      const sample = JSON.parse(out[0]!.value.toString());
      expect(sample.edata).toMatchObject({ courseId: COURSE, batchId: BATCH, action: 'user-enrolment-sync' });
    } finally {
      await producer.disconnect();
      await service.stop();
      await cleanupBorrowing(own);
    }
  });
});

describe('processor: stopped mid-expansion, then resumed', () => {
  const users = Array.from({ length: 30_000 }, (_, i) => `stop-${i}`);
  // One keyspace, seeded once, for both guarantees: 30,000 rows written twice at once cost the
  // shared Cassandra as much as the expansions. Each test has its own topics, group and checkpoints.
  let seeded: TestContext;
  beforeAll(async () => {
    seeded = await createTestContext({ TOPIC_PARTITIONS: '1' });
    await seed(
      seeded,
      users.map((u) => enrolment(u, COURSE, BATCH)),
      [[COURSE, BATCH]],
    );
  });
  afterAll(async () => {
    await seeded.cleanup();
  });

  // The two guarantees side by side: each has its own topics and group.
  test.concurrent.each(['exactly_once', 'at_least_once'])(
    '%s: the next processor resumes from the checkpoint; every user once, the work before the stop kept',
    async (guarantee) => {
      const ctx = await createTestContext({
        CASSANDRA_KEYSPACE: seeded.settings.cassandra.keyspace,
        TOPIC_PARTITIONS: '1',
        SYNC_PAGE_SIZE: '200',
        SYNC_SCAN_CONCURRENCY: '1',
        SYNC_TXN_MAX_RECORDS: '1000',
        SYNC_PROCESSING_GUARANTEE: guarantee,
        // One input resuming; fan-out over the group has its own tests.
        SYNC_FAN_OUT: 'false',
      });
      const producer = ctx.kafka.producer();
      await producer.connect();
      let first = await startService(ctx, { api: false, processor: true });
      // A live read_committed reader, joined before the trigger is sent, so the stop lands right
      // after the first committed events, long before the last page is read.
      // Its long-poll short: disconnecting waits for the fetch in flight (kafkajs's default 5 s).
      const watcher = ctx.kafka.consumer({ groupId: `watch-${ctx.id}`, maxWaitTimeInMs: 100 });
      try {
        let sawFirst: () => void = () => undefined;
        const firstSeen = new Promise<void>((resolve) => (sawFirst = resolve));
        const joined = new Promise<void>((resolve) => watcher.on(watcher.events.GROUP_JOIN, () => resolve()));
        await watcher.connect();
        await watcher.subscribe({ topics: [ctx.settings.topics.output], fromBeginning: true });
        await watcher.run({ eachBatch: async () => sawFirst() });
        await joined;
        await sendTrigger(producer, ctx.settings.topics.trigger, JSON.stringify({ courseId: COURSE, batchId: BATCH }));
        await firstSeen;
        await first.stop();
        await watcher.disconnect();
        const afterStop = await readAll(ctx.kafka, ctx.admin, ctx.settings.topics.output);
        expect(afterStop.length).toBeGreaterThan(0);
        expect(afterStop.length).toBeLessThan(users.length);
        const committed = await ctx.admin.fetchOffsets({
          groupId: ctx.settings.processor.groupId,
          topics: [ctx.settings.topics.trigger],
        });
        // The interrupted trigger was not committed: the next owner continues it.
        expect(committed[0]?.partitions[0]?.offset).not.toBe('1');

        first = await startService(ctx, { api: false, processor: true });
        const resumed = new Promise<ProcessedEvent>((resolve) =>
          first.processorRuntime?.events.on('processed', (e: ProcessedEvent) => resolve(e)),
        );
        const all = await readTopic(ctx.kafka, ctx.settings.topics.output, {
          until: (r) => new Set(r.map((x) => x.key)).size >= users.length,
          timeoutMs: 60000,
          settleMs: 1000,
        });
        expect(new Set(all.map((r) => r.key))).toEqual(new Set(users));
        if (guarantee === 'exactly_once') expect(all).toHaveLength(users.length);
        // A clean stop commits what it reached: nothing before the stop is produced again.
        else expect(all.length - users.length).toBeLessThanOrEqual(1000);
        const event = await resumed;
        expect(event).toMatchObject({ outcome: 'done', resumed: true });
        // The count carries over in the checkpoint: the trigger's total, not just the second half.
        expect(event.records).toBe(users.length);
        // Finished: the checkpoint is deleted (a tombstone is its last record).
        const checkpoints = await readTopic(ctx.kafka, ctx.settings.topics.checkpoints, {
          until: (r) => r.length > 0 && r[r.length - 1]!.value.length === 0,
          timeoutMs: 10000,
          settleMs: 200,
        });
        expect(checkpoints.length).toBeGreaterThan(1);
        expect(checkpoints[checkpoints.length - 1]!.value.length).toBe(0);
      } finally {
        await watcher.disconnect().catch(() => undefined);
        await producer.disconnect();
        await first.stop();
        await cleanupBorrowing(ctx);
      }
    },
  );
});

describe('processor: Avro output', () => {
  test('SYNC_EVENT_FORMAT=avro produces Confluent wire-format events that decode to the design structure', async () => {
    const ctx = await createTestContext({ SYNC_EVENT_FORMAT: 'avro' });
    const service = await startService(ctx, { api: false, processor: true });
    const producer = ctx.kafka.producer();
    try {
      await seed(ctx, [enrolment('u1', COURSE, BATCH)]);
      await producer.connect();
      await sendTrigger(
        producer,
        ctx.settings.topics.trigger,
        JSON.stringify({ courseId: COURSE, batchId: BATCH, userIds: ['u1'] }),
      );
      const out = await readTopic(ctx.kafka, ctx.settings.topics.output, {
        until: (r) => r.length >= 1,
        settleMs: 200,
      });
      expect(out).toHaveLength(1);
      expect(out[0]!.value[0]).toBe(0);
      const event = await ctx.registry.decode(out[0]!.value);
      expect(event).toMatchObject({ eid: 'BE_JOB_REQUEST', edata: { userId: 'u1', batchId: BATCH, courseId: COURSE } });
    } finally {
      await producer.disconnect();
      await service.stop();
      await ctx.cleanup();
    }
  });
});
