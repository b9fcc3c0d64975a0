import type { Admin, ITopicConfig } from 'kafkajs';
import { ensureTopics } from '../../../src/kafka/topics';

/** A broker's view through the three admin calls ensureTopics makes; `failures` are thrown in turn. */
function fakeAdmin(initial: string[], failures: Array<{ on: 'create' | 'metadata'; type: string }>) {
  const topics = new Set(initial);
  const calls = { create: [] as string[][], metadata: 0 };
  const fail = (on: 'create' | 'metadata') => {
    if (failures[0]?.on !== on) return;
    const { type } = failures.shift()!;
    throw Object.assign(new Error(`broker says ${type}`), { type });
  };
  const admin = {
    listTopics: async () => [...topics],
    createTopics: async ({ topics: specs }: { topics: ITopicConfig[] }) => {
      calls.create.push(specs.map((s) => s.topic));
      // The broker creates them, then does not serve them yet.
      for (const s of specs) topics.add(s.topic);
      fail('create');
      return true;
    },
    fetchTopicMetadata: async ({ topics: names }: { topics: string[] }) => {
      calls.metadata++;
      fail('metadata');
      return { topics: names.map((name) => ({ name, partitions: name === 'c' ? [{}, {}] : [{}] })) };
    },
  };
  return { admin: admin as unknown as Admin, calls };
}

const specs = ['a', 'b', 'c'].map((topic) => ({ topic, numPartitions: 1 }));

describe('ensureTopics', () => {
  test('creates only the missing topics and names them', async () => {
    const { admin, calls } = fakeAdmin(['a'], []);
    const ensured = await ensureTopics(admin, specs);
    expect(ensured.created).toEqual(['b', 'c']);
    expect(calls.create).toEqual([['b', 'c']]);
    // As the broker serves them, whatever was asked for.
    expect(ensured.partitionCounts).toEqual(
      new Map([
        ['a', 1],
        ['b', 1],
        ['c', 2],
      ]),
    );
  });

  test('a broker that does not serve just-created topics yet is waited out; they are still named as created', async () => {
    const { admin, calls } = fakeAdmin(
      [],
      [
        { on: 'create', type: 'UNKNOWN_TOPIC_OR_PARTITION' },
        { on: 'metadata', type: 'LEADER_NOT_AVAILABLE' },
      ],
    );
    expect((await ensureTopics(admin, specs)).created).toEqual(['a', 'b', 'c']);
    // Created once: the later attempts find them.
    expect(calls.create).toEqual([['a', 'b', 'c']]);
    expect(calls.metadata).toBe(2);
  });

  test('any other refusal fails at once', async () => {
    const { admin, calls } = fakeAdmin([], [{ on: 'create', type: 'TOPIC_AUTHORIZATION_FAILED' }]);
    await expect(ensureTopics(admin, specs)).rejects.toMatchObject({ type: 'TOPIC_AUTHORIZATION_FAILED' });
    expect(calls.create).toHaveLength(1);
    expect(calls.metadata).toBe(0);
  });

  test('gives up after the attempts it was given', async () => {
    const { admin } = fakeAdmin(
      [],
      Array.from({ length: 5 }, () => ({ on: 'metadata' as const, type: 'UNKNOWN_TOPIC_OR_PARTITION' })),
    );
    await expect(ensureTopics(admin, specs, 2)).rejects.toMatchObject({ type: 'UNKNOWN_TOPIC_OR_PARTITION' });
  });
});
