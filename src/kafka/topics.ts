import type { Admin, ITopicConfig } from 'kafkajs';
import type { Settings } from '../config';
import { sleep } from '../util/async';

export function topicSpecs(topics: Settings['topics']): ITopicConfig[] {
  const common = { numPartitions: topics.partitions, replicationFactor: topics.replicationFactor };
  return [
    { topic: topics.trigger, ...common },
    { topic: topics.output, ...common },
    // The dead-letter topic keeps poison input for a person to look at: keep it for 30 days.
    { topic: topics.deadLetter, ...common, configEntries: [{ name: 'retention.ms', value: String(30 * 86400000) }] },
    // Checkpoints: one live key per input partition, rewritten every transaction. Compacted, and
    // with as many partitions as the trigger topic, so each partition has one writer.
    {
      topic: topics.checkpoints,
      ...common,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'segment.ms', value: String(3600000) },
        { name: 'min.cleanable.dirty.ratio', value: '0.1' },
        { name: 'delete.retention.ms', value: String(86400000) },
      ],
    },
    { topic: topics.tasks, ...common },
    // Status: the last record of each key, for as long as the retention says.
    {
      topic: topics.status,
      ...common,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact,delete' },
        { name: 'retention.ms', value: String(topics.statusRetentionMs) },
        { name: 'segment.ms', value: String(3600000) },
        { name: 'min.cleanable.dirty.ratio', value: '0.1' },
      ],
    },
  ];
}

/** What a busy broker answers for a topic it has just created but does not serve yet. */
const NOT_YET_SERVED = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

export interface EnsuredTopics {
  /** The topics this call created. */
  created: string[];
  /** Every topic asked for, with the number of partitions the broker serves it with. */
  partitionCounts: Map<string, number>;
}

/**
 * Creates the topics that are missing (existing topics are left exactly as they are) and returns,
 * once every topic is served, the names of those it created and every topic's partition count.
 * kafkajs waits for new topics' leaders but retries only LEADER_NOT_AVAILABLE: a busy broker that
 * does not know a topic it has just created yet answers UNKNOWN_TOPIC_OR_PARTITION, which failed
 * `migrate` although the topics existed. That is waited out here (the next attempt creates only
 * what is still missing).
 */
export async function ensureTopics(admin: Admin, specs: ITopicConfig[], attempts = 10): Promise<EnsuredTopics> {
  const created = new Set<string>();
  for (let attempt = 1; ; attempt++) {
    try {
      const existing = new Set(await admin.listTopics());
      const missing = specs.filter((s) => !existing.has(s.topic));
      if (missing.length > 0) {
        for (const s of missing) created.add(s.topic);
        await admin.createTopics({ topics: missing, waitForLeaders: true });
      }
      const { topics } = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
      return {
        created: specs.filter((s) => created.has(s.topic)).map((s) => s.topic),
        partitionCounts: new Map(topics.map((t) => [t.name, t.partitions.length])),
      };
    } catch (err) {
      const type = (err as { type?: unknown }).type;
      if (attempt >= attempts || typeof type !== 'string' || !NOT_YET_SERVED.has(type)) throw err;
      await sleep(200 * attempt);
    }
  }
}
