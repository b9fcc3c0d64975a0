import { execFile } from 'node:child_process';
import path from 'node:path';
import type { Producer } from 'kafkajs';
import { SyncError } from '../../src/errors';
import { REPLAY_HEADERS } from '../../src/operator/dlq';
import type { EnrolmentSyncService } from '../../src/service';
import { deadLetterRecord, DEAD_LETTER_HEADERS } from '../../src/streams/dead-letter';
import { createTestContext, headerText, readTopic, type ConsumedRecord, type TestContext } from '../helpers/context';
import { enrolment, seed, startService } from '../helpers/service';
import { ensureTopics } from '../../src/kafka/topics';

/**
 * Dead letters as an operator handles them, with the built CLI against the real servers: a
 * processor dead-letters poison triggers; `dlq list` shows and filters them; `dlq replay --dry-run`
 * sends nothing; a truncated dead letter is refused; dead letters the processor now accepts are
 * replayed and their events appear.
 */
const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist/src/cli.js');
const COURSE = 'do_course_dlq';
const BATCH = 'batch_dlq';
const LINE = /^(\d+):(\d+) {2}(\S+) {2}(\S+) {2}field=(\S+) {2}from=(\S+) {2}reason="(.*)" {2}value\((.*?)\)=(.*)$/;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function runCli(env: NodeJS.ProcessEnv, args: string[], timeoutMs = 60000): Promise<Result> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile('node', [cli, ...args], { cwd: root, env, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

function lines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l !== '');
}

async function endOffsets(ctx: TestContext, topic: string): Promise<string> {
  const offsets = await ctx.admin.fetchTopicOffsets(topic);
  return offsets
    .sort((a, b) => a.partition - b.partition)
    .map((o) => `${o.partition}:${o.high}`)
    .join(',');
}

describe('dlq list and dlq replay', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;
  let producer: Producer;
  let env: NodeJS.ProcessEnv;
  let dead: ConsumedRecord[];
  const huge = JSON.stringify({
    courseId: COURSE,
    batchId: BATCH,
    userIds: [...Array.from({ length: 700 }, (_, i) => `user-${i}`), 7],
  });

  beforeAll(async () => {
    // A small dead-letter limit, so that one poison trigger is truncated to fit.
    ctx = await createTestContext({ SYNC_DLQ_MAX_BYTES: '4096' });
    env = {
      ...process.env,
      SYNC_ENV: ctx.settings.env,
      CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace,
      LOG_LEVEL: 'warn',
    };
    await seed(ctx, [
      enrolment('ok-1', COURSE, BATCH),
      enrolment('fix-1', COURSE, BATCH),
      enrolment('fix-2', COURSE, BATCH),
    ]);
    producer = ctx.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: ctx.settings.topics.trigger,
      acks: -1,
      messages: [
        { key: 'poison-json', value: 'not json \x1b[31m at all\n', headers: { 'x-origin': 'fuzzer' } },
        { key: 'poison-field', value: JSON.stringify({ courseId: COURSE, batchId: 42 }) },
        {
          key: 'poison-at',
          value: JSON.stringify({ courseId: COURSE, batchId: BATCH, userIds: ['ok-1'], requestedAt: 'next tuesday' }),
        },
        { key: 'poison-huge', value: huge },
        {
          key: 'valid',
          value: JSON.stringify({ triggerId: 'valid-1', courseId: COURSE, batchId: BATCH, userIds: ['ok-1'] }),
        },
      ],
    });
    service = await startService(ctx, { api: false, processor: true });
    dead = await readTopic(ctx.kafka, ctx.settings.topics.deadLetter, { until: (r) => r.length >= 4, settleMs: 300 });
    await readTopic(ctx.kafka, ctx.settings.topics.output, {
      until: (r) => r.some((x) => x.key === 'ok-1'),
      settleMs: 0,
    });
  });

  afterAll(async () => {
    await producer?.disconnect();
    await service?.stop();
    await ctx.cleanup();
  });

  const idOf = (key: string) => {
    const record = dead.find((d) => d.key === key);
    if (!record) throw new Error(`no dead letter keyed ${key}`);
    return `${record.partition}:${record.offset}`;
  };

  test('list: one line per dead letter with offset, time, code, field, source, reason and first bytes, then exits', async () => {
    expect(dead).toHaveLength(4);
    const result = await runCli(env, ['dlq', 'list']);
    expect(result.code).toBe(0);
    const out = lines(result.stdout);
    expect(out).toHaveLength(4);
    expect(result.stderr).toMatch(/4 of 4 dead letters read from .*\.enrolment\.sync\.trigger\.dlq/);
    const parsed = out.map((l) => {
      const m = LINE.exec(l);
      if (!m) throw new Error(`not a dlq line: ${l}`);
      return {
        id: `${m[1]}:${m[2]}`,
        at: m[3],
        code: m[4],
        field: m[5],
        from: m[6],
        reason: m[7],
        size: m[8],
        value: m[9],
      };
    });
    expect(parsed.map((p) => p.id).sort()).toEqual(
      ['poison-json', 'poison-field', 'poison-at', 'poison-huge'].map(idOf).sort(),
    );
    const byId = new Map(parsed.map((p) => [p.id, p]));
    const field = byId.get(idOf('poison-field'))!;
    expect(field).toMatchObject({
      code: 'SYNC_BAD_TRIGGER',
      field: 'batchId',
      reason: 'batchId must be a string, got number',
    });
    expect(field.from).toMatch(new RegExp(`^${ctx.settings.topics.trigger.replace(/\./g, '\\.')}/\\d+@\\d+$`));
    expect(Date.parse(field.at!)).toBeGreaterThan(Date.now() - 120000);
    const json = byId.get(idOf('poison-json'))!;
    expect(json).toMatchObject({ field: '-', value: 'not json \\x1b[31m at all\\n', size: '22 B' });
    expect(json.reason).toMatch(/^malformed JSON/);
    expect(byId.get(idOf('poison-at'))).toMatchObject({ field: 'requestedAt' });
    expect(byId.get(idOf('poison-at'))!.reason).toMatch(/requestedAt must be epoch milliseconds.*'next tuesday'/);
    const truncated = byId.get(idOf('poison-huge'))!;
    expect(truncated.size).toMatch(new RegExp(`^\\d+ of ${Buffer.byteLength(huge)} B, truncated$`));
    expect(truncated.value).toMatch(/^\{"courseId":"do_course_dlq".*…$/);
    expect(truncated.field).toBe('userIds[700]');
  });

  test('list filters: --code, --field, --partition with offsets, --since/--until, --limit; --json for machines', async () => {
    const byField = await runCli(env, ['dlq', 'list', '--field', 'batchId,requestedAt']);
    expect(byField.code).toBe(0);
    expect(
      lines(byField.stdout)
        .map((l) => l.split('  ')[0])
        .sort(),
    ).toEqual([idOf('poison-field'), idOf('poison-at')].sort());

    const noCode = await runCli(env, ['dlq', 'list', '--code', 'SYNC_TIMEOUT']);
    expect(noCode.code).toBe(0);
    expect(noCode.stdout).toBe('');

    const [partition, offset] = idOf('poison-field').split(':');
    const exact = await runCli(env, [
      'dlq',
      'list',
      '--partition',
      partition!,
      '--from-offset',
      offset!,
      '--to-offset',
      offset!,
    ]);
    expect(lines(exact.stdout).map((l) => l.split('  ')[0])).toEqual([idOf('poison-field')]);

    const future = await runCli(env, ['dlq', 'list', '--since', new Date(Date.now() + 3600000).toISOString()]);
    expect(future.stdout).toBe('');
    const past = await runCli(env, [
      'dlq',
      'list',
      '--since',
      '1h',
      '--until',
      new Date(Date.now() + 60000).toISOString(),
    ]);
    expect(lines(past.stdout)).toHaveLength(4);

    const one = await runCli(env, ['dlq', 'list', '--limit', '1']);
    expect(lines(one.stdout)).toHaveLength(1);

    const json = await runCli(env, ['dlq', 'list', '--json', '--field', 'batchId']);
    expect(json.code).toBe(0);
    const objects = lines(json.stdout).map((l) => JSON.parse(l) as Record<string, any>);
    expect(objects).toHaveLength(1);
    const record = dead.find((d) => d.key === 'poison-field')!;
    expect(objects[0]).toMatchObject({
      id: idOf('poison-field'),
      code: 'SYNC_BAD_TRIGGER',
      field: 'batchId',
      source: { topic: ctx.settings.topics.trigger, offset: headerText(record.headers, DEAD_LETTER_HEADERS.offset) },
      key: { text: 'poison-field' },
      replayable: true,
    });
    expect(Buffer.from(objects[0]!.value.base64, 'base64').equals(record.value)).toBe(true);
  });

  test('bad flags name the flag and exit 2; an empty dead-letter topic lists nothing and returns at once', async () => {
    const bad = await runCli(env, ['dlq', 'list', '--since', 'whenever']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--since must be a time/);
    const unknown = await runCli(env, ['dlq', 'list', '--colour', 'red']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--colour/);
    const ambiguous = await runCli(env, ['dlq', 'replay', '--offset', '0']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/--offset 0 is ambiguous: the topic has 2 partitions/);

    const emptyTopic = `${ctx.settings.env}.empty.dlq`;
    await ensureTopics(ctx.admin, [{ topic: emptyTopic, numPartitions: 2 }]);
    try {
      const empty = await runCli({ ...env, DEAD_LETTER_TOPIC: emptyTopic }, ['dlq', 'list']);
      expect(empty.code).toBe(0);
      expect(empty.stdout).toBe('');
      expect(empty.stderr).toMatch(/0 of 0 dead letters/);
      expect(empty.ms).toBeLessThan(10000);
    } finally {
      await ctx.admin.deleteTopics({ topics: [emptyTopic] }).catch(() => undefined);
    }
  });

  test('a transaction still open on the dead-letter topic is neither listed nor waited for', async () => {
    const open = ctx.kafka.producer({
      transactionalId: `${ctx.settings.env}-open`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await open.connect();
    const txn = await open.transaction();
    try {
      await txn.send({ topic: ctx.settings.topics.deadLetter, messages: [{ key: 'uncommitted', value: 'not yet' }] });
      const result = await runCli(env, ['dlq', 'list']);
      expect(result.code).toBe(0);
      expect(lines(result.stdout)).toHaveLength(4);
      expect(result.stdout).not.toMatch(/not yet/);
      expect(result.ms).toBeLessThan(15000);
    } finally {
      await txn.abort();
      await open.disconnect();
    }
  });

  test('replay --dry-run says what it would send and sends nothing; a truncated dead letter is refused, naming why', async () => {
    const before = await endOffsets(ctx, ctx.settings.topics.trigger);
    const dry = await runCli(env, ['dlq', 'replay', '--field', 'batchId,requestedAt', '--dry-run']);
    expect(dry.code).toBe(0);
    const out = lines(dry.stdout);
    expect(out).toHaveLength(3);
    expect(out[2]).toBe('2 dead letters would be replayed (dry run: nothing was sent)');
    expect(
      out.slice(0, 2).every((l) => l.startsWith('would replay ') && l.endsWith(`to=${ctx.settings.topics.trigger}`)),
    ).toBe(true);

    const refused = await runCli(env, ['dlq', 'replay', '--offset', idOf('poison-huge')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      new RegExp(`refused ${idOf('poison-huge')}: its value was cut to \\d+ of ${Buffer.byteLength(huge)} bytes`),
    );
    expect(refused.stderr).toMatch(/nothing was replayed/);
    expect(refused.stdout).toBe('');

    const missing = await runCli(env, ['dlq', 'replay', '--offset', '0:999999']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no dead letter at 0:999999/);

    await new Promise((r) => setTimeout(r, 500));
    expect(await endOffsets(ctx, ctx.settings.topics.trigger)).toBe(before);
  });

  test('dead letters a fixed processor accepts are replayed: their events appear; one still bad is dead-lettered again, traced to its first', async () => {
    const { trigger, output, deadLetter } = ctx.settings.topics;
    const sentAt = new Date(Date.now() - 1000).toISOString();
    // Before requestedAt was lenient, an ISO-8601 requestedAt was dead-lettered: this is the
    // record that processor wrote (the same function, its error), for an upgraded one to replay.
    const original = {
      topic: trigger,
      partition: 1,
      offset: '4321',
      timestamp: String(Date.now() - 60000),
      key: Buffer.from('fix-me'),
      value: Buffer.from(
        JSON.stringify({
          triggerId: 'fix-me',
          courseId: COURSE,
          batchId: BATCH,
          userIds: ['fix-1', 'fix-2'],
          requestedAt: '2021-03-04T05:58:04.382Z',
        }),
      ),
      headers: { 'x-request': 'r-1' },
    };
    const oldError = new SyncError('SYNC_BAD_TRIGGER', 'requestedAt must be epoch milliseconds', {
      retriable: false,
      field: 'requestedAt',
    });
    await producer.send({
      topic: deadLetter,
      acks: -1,
      messages: [deadLetterRecord(original, oldError, 'enrolment-sync', new Date())],
    });
    const deadNow = await readTopic(ctx.kafka, deadLetter, { until: (r) => r.length >= 5, settleMs: 300 });
    const fixMe = deadNow.find((d) => d.key === 'fix-me')!;
    const poisonAt = deadNow.find((d) => d.key === 'poison-at')!;

    const listed = await runCli(env, ['dlq', 'list', '--since', sentAt]);
    expect(lines(listed.stdout).map((l) => l.split('  ')[0])).toEqual([`${fixMe.partition}:${fixMe.offset}`]);

    const replayed = await runCli(env, ['dlq', 'replay', '--field', 'requestedAt']);
    expect(replayed.code).toBe(0);
    expect(lines(replayed.stdout).sort()).toEqual(
      [
        `replayed ${fixMe.partition}:${fixMe.offset} to ${trigger}`,
        `replayed ${poisonAt.partition}:${poisonAt.offset} to ${trigger}`,
        '2 dead letters replayed',
      ].sort(),
    );

    const events = await readTopic(ctx.kafka, output, {
      until: (r) => ['fix-1', 'fix-2'].every((u) => r.some((x) => x.key === u)),
      settleMs: 1000,
    });
    const mine = events
      .filter((e) => e.key === 'fix-1' || e.key === 'fix-2')
      .map((e) => JSON.parse(e.value.toString()));
    expect(mine).toHaveLength(2);
    for (const event of mine) {
      expect(event).toMatchObject({ ets: 1614837484382, edata: { batchId: BATCH, courseId: COURSE } });
      expect(event.mid).toMatch(/^LP\.1614837484382\./);
    }

    // The replayed trigger carries its original key, value and headers, and where it came from.
    const triggers = await readTopic(ctx.kafka, trigger, {
      until: (r) => r.filter((t) => headerText(t.headers, REPLAY_HEADERS.offset) !== undefined).length >= 2,
      settleMs: 0,
    });
    const again = triggers.find((t) => t.key === 'fix-me')!;
    expect(again.value.equals(original.value)).toBe(true);
    expect(headerText(again.headers, 'x-request')).toBe('r-1');
    expect(headerText(again.headers, REPLAY_HEADERS.topic)).toBe(deadLetter);
    expect(headerText(again.headers, REPLAY_HEADERS.partition)).toBe(String(fixMe.partition));
    expect(headerText(again.headers, REPLAY_HEADERS.offset)).toBe(fixMe.offset);
    expect(headerText(again.headers, DEAD_LETTER_HEADERS.code)).toBeUndefined();

    // Still garbage: dead-lettered once more, with a fresh diagnosis and the trace of its first.
    const after = await readTopic(ctx.kafka, deadLetter, { until: (r) => r.length >= 6, settleMs: 1000 });
    expect(after).toHaveLength(6);
    const second = after.find((d) => d.key === 'poison-at' && d.offset !== poisonAt.offset)!;
    expect(headerText(second.headers, DEAD_LETTER_HEADERS.field)).toBe('requestedAt');
    expect(headerText(second.headers, REPLAY_HEADERS.offset)).toBe(poisonAt.offset);
    expect(headerText(second.headers, DEAD_LETTER_HEADERS.offset)).toBe(
      triggers.find((t) => t.key === 'poison-at' && headerText(t.headers, REPLAY_HEADERS.offset) !== undefined)!.offset,
    );
  });
});
