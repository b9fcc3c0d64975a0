import type { SeedEnrolment } from '../../src/cassandra/seed';
import { exactlyOnce, headerText, perfect, readTopic, TopicReader, World } from './harness';

/**
 * 1,000 garbage messages interleaved with 100 valid triggers (single users and lists with an
 * inactive and an unknown user in them), under each processing guarantee: every garbage message
 * lands in the dead-letter topic with its original key and bytes and the dlq.* headers pointing
 * back at where it sat; every valid trigger yields its active users' events exactly once.
 */
const COURSE = 'do_poison_course';
const BATCH = 'poison_batch';
const GARBAGE = 1000;
const VALID = 100;

interface Message {
  key: string;
  value: Buffer | string | null;
}

/** Ten kinds of input no processor can make sense of, each message unique (its key and bytes). */
function garbage(count: number, courseId: string, batchId: string): Message[] {
  const out: Message[] = [];
  for (let j = 0; j < count; j++) {
    const key = `garbage-${j}`;
    let value: Buffer | string | null;
    switch (j % 10) {
      case 0:
        value = Buffer.from([0xff, 0xfe, j & 0xff, (j >> 8) & 0xff, 0x13, 0x37]); // not JSON, not Avro
        break;
      case 1:
        value = `{"courseId": "${courseId}", "batchId": "${batchId}-${j}"`; // truncated JSON
        break;
      case 2:
        value = JSON.stringify([courseId, batchId, j]); // JSON, not an object
        break;
      case 3:
        value = JSON.stringify({ courseId, batchId: j }); // batchId not a string
        break;
      case 4:
        value = JSON.stringify({ batchId, userIds: [`u-${j}`] }); // courseId missing
        break;
      case 5:
        value = JSON.stringify({ courseId, batchId, userIds: `u-${j}` }); // userIds not a list
        break;
      case 6:
        value = JSON.stringify({ courseId, batchId, userIds: [j, null] }); // user ids not strings
        break;
      case 7:
        value = JSON.stringify({ courseId, batchId, userIds: [], note: j }); // empty list refused
        break;
      case 8:
        value = j % 20 === 8 ? null : ''; // tombstone, empty value
        break;
      default:
        // Confluent wire format with a schema id the registry does not have.
        value = Buffer.from([0, 0x7f, 0x7f, (j >> 8) & 0xff, j & 0xff, 2, 4, 6]);
    }
    out.push({ key, value });
  }
  return out;
}

interface SeededBatchUsers {
  /** userIds per valid trigger */
  triggers: string[][];
  /** The users that must get exactly one event. */
  expected: Set<string>;
}

/**
 * Half the valid triggers name one active user; the other half a list of two active users, an
 * inactive one and one not enrolled. No user is in two triggers, so each expected user gets one event.
 */
const validTriggers = {
  async seed(world: World, courseId: string, batchId: string, count: number): Promise<SeededBatchUsers> {
    const rows: SeedEnrolment[] = [];
    const triggers: string[][] = [];
    const expected = new Set<string>();
    const row = (userId: string, active: boolean): SeedEnrolment => ({ userId, courseId, batchId, active, status: 1 });
    for (let i = 0; i < count; i++) {
      if (i % 2 === 0) {
        rows.push(row(`solo-${i}`, true));
        expected.add(`solo-${i}`);
        triggers.push([`solo-${i}`]);
      } else {
        const [a, b, c] = [`list-${i}-a`, `list-${i}-b`, `list-${i}-inactive`];
        rows.push(row(a, true), row(b, true), row(c, false));
        expected.add(a).add(b);
        triggers.push([a, b, c, `list-${i}-not-enrolled`]);
      }
    }
    await world.seed(rows, [[courseId, batchId]]);
    return { triggers, expected };
  },
  messages(users: SeededBatchUsers, courseId: string, batchId: string): Message[] {
    return users.triggers.map((userIds, i) => ({
      key: `valid-${i}`,
      value: JSON.stringify({ triggerId: `valid-${i}`, courseId, batchId, userIds }),
    }));
  },
};

describe.each(['exactly_once', 'at_least_once'])('SYNC_PROCESSING_GUARANTEE=%s', (guarantee) => {
  let world: World;
  let users: SeededBatchUsers;

  beforeAll(async () => {
    world = new World({ partitions: 3 });
    await world.migrate();
    users = await validTriggers.seed(world, COURSE, BATCH, VALID);
  }, 120000);

  afterAll(async () => {
    await world?.cleanup();
  });

  test(`${GARBAGE} garbage messages all dead-lettered with headers; ${VALID} valid triggers' events exactly once`, async () => {
    const [committed, dead] = await Promise.all([
      TopicReader.start(world, world.topics.output, 'read_committed'),
      TopicReader.start(world, world.topics.deadLetter, 'read_committed'),
    ]);
    const p = await world.startProcessor('poison', { SYNC_PROCESSING_GUARANTEE: guarantee });

    const bad = garbage(GARBAGE, COURSE, BATCH);
    const good = validTriggers.messages(users, COURSE, BATCH);
    const messages: Message[] = [];
    for (let i = 0; i < good.length; i++) {
      messages.push(...bad.slice(i * (GARBAGE / VALID), (i + 1) * (GARBAGE / VALID)), good[i]!);
    }
    await world.send(world.topics.trigger, messages);
    // Where each message sits, as the trigger topic says.
    const sent = await readTopic(world, world.topics.trigger, {
      until: (r) => r.total >= messages.length,
      timeoutMs: 30000,
      settleMs: 200,
    });
    const position = new Map(sent.records.map((r) => [r.key as string, r]));

    await dead.waitFor((r) => r.total >= GARBAGE, 180000);
    await committed.waitFor((r) => r.distinct >= users.expected.size, 60000);
    await Promise.all([dead.settle(3000, 10000), committed.settle(3000, 10000)]);

    const problems: string[] = [];
    const byKey = new Map<string, number>();
    for (const d of dead.records) {
      const key = d.key ?? '(null)';
      byKey.set(key, (byKey.get(key) ?? 0) + 1);
      const original = bad.find((b) => b.key === key);
      const at = position.get(key);
      if (!original || !at) {
        problems.push(`${key}: dead-lettered but not garbage`);
        continue;
      }
      const sameBytes = Buffer.from(original.value ?? '').equals(d.value ?? Buffer.alloc(0));
      if (!sameBytes) problems.push(`${key}: value changed`);
      const headers = {
        code: headerText(d.headers, 'dlq.error.code'),
        message: headerText(d.headers, 'dlq.error.message'),
        topic: headerText(d.headers, 'dlq.source.topic'),
        partition: headerText(d.headers, 'dlq.source.partition'),
        offset: headerText(d.headers, 'dlq.source.offset'),
      };
      if (!headers.code || /UNAVAILABLE|TIMEOUT/.test(headers.code)) problems.push(`${key}: code ${headers.code}`);
      if (!headers.message) problems.push(`${key}: no dlq.error.message`);
      if (headers.topic !== world.topics.trigger) problems.push(`${key}: source topic ${headers.topic}`);
      if (headers.partition !== String(at.partition) || headers.offset !== at.offset) {
        problems.push(`${key}: source ${headers.partition}/${headers.offset}, sat at ${at.partition}/${at.offset}`);
      }
    }
    const missingGarbage = bad.filter((b) => !byKey.has(b.key)).map((b) => b.key);
    const twice = [...byKey].filter(([, n]) => n > 1).map(([k]) => k);
    const codes = new Set(dead.records.map((d) => headerText(d.headers, 'dlq.error.code')));
    console.log(
      JSON.stringify({
        test: `poison (${guarantee})`,
        deadLettered: dead.total,
        codes: [...codes],
        events: committed.total,
        expectedEvents: users.expected.size,
      }),
    );

    expect(p.alive).toBe(true);
    expect(dead.total).toBe(GARBAGE);
    expect(missingGarbage).toEqual([]);
    expect(twice).toEqual([]);
    expect(problems.slice(0, 10)).toEqual([]);
    expect(exactlyOnce(committed, users.expected)).toEqual(perfect(users.expected));
  }, 300000);
});
