import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from 'cassandra-driver';
import type { Admin } from 'kafkajs';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Settings } from './config';
import { translateCassandraError } from './cassandra/client';
import { registerSchemas, type RegisteredSchemas } from './kafka/registry';
import { ensureTopics, topicSpecs, type EnsuredTopics } from './kafka/topics';
import { translateKafkaError } from './kafka/client';
import type { Logger } from './observability/logger';
import { schemasDir } from './schemas';

export const DEFAULT_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

/** The CQL statements of schemas/cassandra/*.cql, in file order, with the placeholders filled in. */
export function cqlStatements(keyspace: string, replication: string): string[] {
  const dir = path.join(schemasDir(), 'cassandra');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cql'))
    .sort();
  const statements: string[] = [];
  for (const file of files) {
    const text = readFileSync(path.join(dir, file), 'utf8')
      .split('\n')
      .filter((line) => !line.trim().startsWith('--'))
      .join('\n')
      .replaceAll('${keyspace}', keyspace)
      .replaceAll('${replication}', replication);
    for (const statement of text.split(/;\s*(?:\n|$)/)) {
      if (statement.trim() !== '') statements.push(statement.trim());
    }
  }
  return statements;
}

export async function applyCassandraSchema(client: Client, keyspace: string, replication: string): Promise<number> {
  const statements = cqlStatements(keyspace, replication);
  for (const statement of statements) {
    try {
      await client.execute(statement);
    } catch (err) {
      throw translateCassandraError(err, `applying schema (${statement.split('\n')[0]})`);
    }
  }
  return statements.length;
}

export interface MigrateResult {
  cqlStatements: number;
  createdTopics: string[];
  /** Topics that were already there with another partition count than TOPIC_PARTITIONS asks. */
  partitionCounts: Array<{ topic: string; partitions: number }>;
  schemas: RegisteredSchemas;
}

/** Idempotent: keyspace and tables, topics, and schemas in the registry. */
export async function migrate(
  settings: Settings,
  deps: { cassandra: Client; admin: Admin; registry: SchemaRegistry; log: Logger; replication: string },
): Promise<MigrateResult> {
  const cql = await applyCassandraSchema(deps.cassandra, settings.cassandra.keyspace, deps.replication);
  deps.log.info({ keyspace: settings.cassandra.keyspace, statements: cql }, 'cassandra schema applied');
  let ensured: EnsuredTopics;
  try {
    ensured = await ensureTopics(deps.admin, topicSpecs(settings.topics));
  } catch (err) {
    throw translateKafkaError(err, 'creating topics');
  }
  const createdTopics = ensured.created;
  deps.log.info({ created: createdTopics }, 'topics ready');
  // An existing topic is never changed: adding partitions would move keys, and status records
  // are found by a hash over the status topic's partition count. So a different count is
  // reported for a person to decide, not repaired.
  const partitionCounts = [...ensured.partitionCounts]
    .filter(([, partitions]) => partitions !== settings.topics.partitions)
    .map(([topic, partitions]) => ({ topic, partitions }));
  const schemas = await registerSchemas(deps.registry, settings.topics);
  deps.log.info(schemas, 'schemas registered');
  return { cqlStatements: cql, createdTopics, partitionCounts, schemas };
}
