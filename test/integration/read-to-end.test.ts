import type { Admin } from 'kafkajs';
import { readToEnd, type PartitionRange } from '../../src/kafka/read-to-end';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * readToEnd against the real broker: what `dlq list` and the bench's output check rely on. The
 * ends are the topic's (read_committed) ends when the read starts; transaction markers and
 * aborted records lie inside them and must not stall the read.
 */
async function ends(admin: Admin, topic: string): Promise<PartitionRange[]> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.map((o) => ({ partition: o.partition, from: BigInt(o.low), to: BigInt(o.high) }));
}

describe('readToEnd (real Kafka)', () => {
  let ctx: TestContext;
  let topic: string;
  const read = async (ranges: readonly PartitionRange[], stopAfter = Infinity) => {
    const seen: string[] = [];
    await readToEnd(ctx.kafka, topic, ranges, {
      groupId: `read-to-end-${ctx.id}-${Math.random()}`,
      timeoutMs: 20000,
      onRecord: (partition, m) => {
        seen.push(`${partition}:${m.value?.toString()}`);
        return seen.length >= stopAfter;
      },
    });
    return seen;
  };

  beforeAll(async () => {
    ctx = await createTestContext();
    topic = ctx.settings.topics.output; // two partitions
  });
  afterAll(async () => {
    await ctx?.cleanup();
  });

  test('reads what was committed up to the ends fixed at its start: aborted records, markers and an open transaction do not stall it', async () => {
    const producer = ctx.kafka.producer({ transactionalId: `rte-${ctx.id}`, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      const committed = await producer.transaction();
      await committed.send({
        topic,
        messages: [
          { partition: 0, value: 'a' },
          { partition: 0, value: 'b' },
          { partition: 1, value: 'c' },
        ],
      });
      await committed.commit();
      const aborted = await producer.transaction();
      await aborted.send({ topic, messages: [{ partition: 0, value: 'aborted' }] });
      await aborted.abort();
      const last = await producer.transaction();
      await last.send({ topic, messages: [{ partition: 1, value: 'd' }] });
      await last.commit();
      // Still open while the read runs: past the last stable offset, so outside the ends.
      const open = await producer.transaction();
      await open.send({ topic, messages: [{ partition: 0, value: 'open' }] });
      try {
        const ranges = await ends(ctx.admin, topic);
        const started = Date.now();
        expect((await read(ranges)).sort()).toEqual(['0:a', '0:b', '1:c', '1:d']);
        expect(Date.now() - started).toBeLessThan(15000);
        // A range that starts later skips what lies before it.
        const from1 = ranges.map((r) => (r.partition === 0 ? { ...r, from: 1n } : r));
        expect((await read(from1)).sort()).toEqual(['0:b', '1:c', '1:d']);
        // Stopping early: nothing is handed over after the record that said stop.
        expect(await read(ranges, 1)).toHaveLength(1);
      } finally {
        await open.abort();
      }
    } finally {
      await producer.disconnect();
    }
  });

  test('empty ranges return at once, without a consumer', async () => {
    const started = Date.now();
    expect(await read([{ partition: 0, from: 5n, to: 5n }])).toEqual([]);
    expect(Date.now() - started).toBeLessThan(100);
  });

  test('an end that is never reached gives up with SYNC_TIMEOUT, naming the partition behind', async () => {
    const ranges = [{ partition: 1, from: 0n, to: 1_000_000n }];
    await expect(
      readToEnd(ctx.kafka, topic, ranges, {
        groupId: `read-to-end-${ctx.id}-timeout`,
        timeoutMs: 3000,
        timeoutHint: 'the hint',
        onRecord: () => false,
      }),
    ).rejects.toMatchObject({
      code: 'SYNC_TIMEOUT',
      message: expect.stringMatching(/partition 1 at \d+ of 1000000\); the hint$/),
    });
  });
});
