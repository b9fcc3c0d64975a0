import type { SyncTrigger } from '../../../processors/enrolment-sync/trigger';
import type { IdempotentProducer, TopicRecords } from '../../../src/kafka/ports';
import { StickyTriggerIds } from '../../../src/kafka/sticky-trigger-ids';
import { createTriggerPublisher } from '../../../src/kafka/trigger-publisher';
import { statusPartition } from '../../../src/streams/status';

describe('sticky trigger ids', () => {
  test('within a window every id has one trigger partition and one status partition; the next window moves on', () => {
    let now = 1_000_000;
    const ids = new StickyTriggerIds({ triggerPartitions: 4, statusPartitions: 4, windowMs: 50, now: () => now });
    const windowOf = (n: number) => {
      const made = Array.from({ length: n }, () => ids.next());
      return {
        trigger: new Set(made.map((id) => ids.partitionOf(id))),
        status: new Set(made.map((id) => statusPartition(id, 4))),
        unique: new Set(made).size,
      };
    };
    // Windows are aligned to the process's random phase: step well inside one.
    const seen: number[] = [];
    for (let w = 0; w < 8; w++) {
      const first = ids.partitionOf(ids.next());
      const window = windowOf(200);
      // A window boundary may fall inside the 200 ids only if `now` moved, and it does not here.
      expect(window.unique).toBe(200);
      expect(window.trigger).toEqual(new Set([first]));
      expect(window.status).toEqual(new Set([first]));
      seen.push(first);
      now += 50;
    }
    // Consecutive windows take the partitions in turn, so each gets its share.
    expect(new Set(seen)).toEqual(new Set([0, 1, 2, 3]));
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBe(((seen[i - 1] as number) + 1) % 4);
  });

  test('with different partition counts both partitions still follow the window', () => {
    const ids = new StickyTriggerIds({ triggerPartitions: 6, statusPartitions: 4, windowMs: 1000, now: () => 0 });
    const made = Array.from({ length: 100 }, () => ids.next());
    expect(new Set(made.map((id) => ids.partitionOf(id))).size).toBe(1);
    expect(new Set(made.map((id) => statusPartition(id, 4))).size).toBe(1);
  });

  test('window 0 or one partition: plain random ids, spread by their hash', () => {
    const off = new StickyTriggerIds({ triggerPartitions: 4, statusPartitions: 4, windowMs: 0, now: () => 0 });
    const made = Array.from({ length: 200 }, () => off.next());
    expect(new Set(made.map((id) => off.partitionOf(id))).size).toBe(4);
    const one = new StickyTriggerIds({ triggerPartitions: 1, statusPartitions: 1, windowMs: 50 });
    expect(one.next()).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('trigger publisher with partitionOf', () => {
  const trigger = (id: string, userIds: string[] | null): SyncTrigger => ({
    triggerId: id,
    courseId: 'c',
    batchId: 'b',
    userIds,
    requestedBy: 'test',
    requestedAt: 0,
    source: 'api',
    includeInactive: null,
    includeCompleted: null,
  });

  test('a user-list trigger goes to the partition its id names; a whole-batch trigger goes by its key', async () => {
    const sent: TopicRecords[] = [];
    const producer: IdempotentProducer = {
      open: async () => undefined,
      send: async (batches) => void sent.push(...batches),
      enqueue: async () => undefined,
      flush: async () => undefined,
      close: async () => undefined,
    };
    const publish = createTriggerPublisher(producer, 't', {
      partitionOf: (id) => (id === 'a' ? 3 : 1),
      status: { topic: 's', partitions: 4 },
    });
    await publish(trigger('a', ['u1']));
    await publish(trigger('b', null));
    const triggers = sent.filter((b) => b.topic === 't').flatMap((b) => b.messages);
    expect(triggers.map((m) => [m.key, m.partition])).toEqual([
      ['a', 3],
      ['c|b', undefined],
    ]);
    // Status records keep their own partition: the one readers wait on.
    const status = sent.filter((b) => b.topic === 's').flatMap((b) => b.messages);
    expect(status.map((m) => m.partition)).toEqual([statusPartition('a', 4), statusPartition('b', 4)]);
  });
});
