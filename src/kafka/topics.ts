import type { Admin, ITopicConfig } from 'kafkajs';
import type { Settings } from '../config';

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

/** Creates the topics that are missing; existing topics are left exactly as they are. */
export async function ensureTopics(admin: Admin, specs: ITopicConfig[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (missing.length > 0) {
    await admin.createTopics({ topics: missing, waitForLeaders: true });
  }
  return missing.map((s) => s.topic);
}
