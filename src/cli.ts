#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createCassandra } from './cassandra/client';
import { EnrolmentReader } from './cassandra/enrolments';
import { demoEnrolments, insertCourseBatch, insertEnrolments } from './cassandra/seed';
import { loadConfig, type Settings } from './config';
import { SyncError } from './errors';
import { createKafka, javaCompatiblePartitioner, translateKafkaError } from './kafka/client';
import { createRegistry } from './kafka/registry';
import { createTriggerPublisher } from './kafka/trigger-publisher';
import { exitOnError, runService } from './main';
import { DEFAULT_REPLICATION, migrate } from './migrate';
import { createLogger } from './observability/logger';
import { MAX_ID_LENGTH } from '../processors/enrolment-sync/trigger';

const USAGE = `usage: enrolment-sync <command> [options]

commands:
  run                      the API and the processor together (the single-machine default)
  api                      the API only
  processor                the processor only
  migrate                  create keyspace, tables, index, topics and schemas (idempotent)
  batch --course-id C --batch-id B [--include-inactive] [--exclude-completed] [--requested-by WHO]
                           sync every enrolled user of a batch; prints the triggerId
  seed-demo [--course-id C] [--batch-id B] [--users N]
                           write a demo course batch (every 10th user inactive, every 7th completed)
  watch [--limit N] [--timeout-ms MS] [--from-beginning]
                           print the sync events arriving on the output topic

Configuration comes from environment variables (see README.md); defaults are the local servers.`;

type Flags = Record<string, string | boolean | undefined>;

function parse(args: string[], options: ParseArgsConfig['options']): Flags {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Flags;
  } catch (err) {
    throw new SyncError('SYNC_BAD_REQUEST', (err as Error).message, { retriable: false });
  }
}

function requiredId(flags: Flags, name: string): string {
  const value = flags[name];
  if (typeof value !== 'string' || value.trim() === '') {
    throw new SyncError('SYNC_BAD_REQUEST', `--${name} is required and must not be empty`, {
      retriable: false,
      field: name,
    });
  }
  if (value.length > MAX_ID_LENGTH) {
    throw new SyncError('SYNC_BAD_REQUEST', `--${name} must be at most ${MAX_ID_LENGTH} characters`, {
      retriable: false,
      field: name,
    });
  }
  return value;
}

function wholeNumber(flags: Flags, name: string, fallback: number, min: number): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new SyncError('SYNC_BAD_REQUEST', `--${name} must be a whole number ≥ ${min}, got '${String(raw)}'`, {
      retriable: false,
      field: name,
    });
  }
  return value;
}

async function withCassandra<T>(
  settings: Settings,
  fn: (client: ReturnType<typeof createCassandra>) => Promise<T>,
): Promise<T> {
  const client = createCassandra(settings.cassandra);
  try {
    return await fn(client);
  } finally {
    await client.shutdown();
  }
}

async function commandMigrate(settings: Settings): Promise<void> {
  const log = createLogger(settings.logLevel === 'info' ? 'warn' : settings.logLevel);
  const kafka = createKafka(settings.kafka, log);
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (err) {
    throw translateKafkaError(err, `connecting to Kafka at ${settings.kafka.brokers.join(',')}`);
  }
  try {
    await withCassandra(settings, async (cassandra) => {
      const result = await migrate(settings, {
        cassandra,
        admin,
        registry: createRegistry(settings.registry),
        log,
        replication: process.env.CASSANDRA_REPLICATION ?? DEFAULT_REPLICATION,
      });
      console.log(
        `migrated: keyspace ${settings.cassandra.keyspace} (${result.cqlStatements} statements); ` +
          `topics ${settings.topics.trigger}, ${settings.topics.output}, ${settings.topics.deadLetter}` +
          (result.createdTopics.length > 0 ? ` (created ${result.createdTopics.join(', ')})` : ' (already there)') +
          `; schema ids: sync event ${result.schemas.syncEventSchemaId}, trigger ${result.schemas.triggerSchemaId}`,
      );
    });
  } finally {
    await admin.disconnect();
  }
}

async function commandBatch(settings: Settings, args: string[]): Promise<void> {
  const flags = parse(args, {
    'course-id': { type: 'string' },
    'batch-id': { type: 'string' },
    'include-inactive': { type: 'boolean' },
    'exclude-completed': { type: 'boolean' },
    'requested-by': { type: 'string' },
  });
  const courseId = requiredId(flags, 'course-id');
  const batchId = requiredId(flags, 'batch-id');
  const log = createLogger('warn');
  const exists = await withCassandra(settings, (client) =>
    new EnrolmentReader(client, settings.cassandra.keyspace, settings.processor).batchExists(courseId, batchId),
  );
  if (!exists) {
    throw new SyncError(
      'SYNC_NOT_FOUND',
      `no batch '${batchId}' of course '${courseId}' in ${settings.cassandra.keyspace}.course_batch`,
      { retriable: false, field: 'batch-id' },
    );
  }
  const producer = createKafka(settings.kafka, log).producer({
    idempotent: true,
    allowAutoTopicCreation: false,
    createPartitioner: javaCompatiblePartitioner,
  });
  try {
    await producer.connect();
  } catch (err) {
    throw translateKafkaError(err, `connecting to Kafka at ${settings.kafka.brokers.join(',')}`);
  }
  try {
    const triggerId = randomUUID();
    await createTriggerPublisher(
      producer,
      settings.topics.trigger,
    )({
      triggerId,
      courseId,
      batchId,
      userIds: null,
      requestedBy: typeof flags['requested-by'] === 'string' ? flags['requested-by'] : (process.env.USER ?? 'operator'),
      requestedAt: Date.now(),
      source: 'batch',
      includeInactive: flags['include-inactive'] === true ? true : null,
      includeCompleted: flags['exclude-completed'] === true ? false : null,
    });
    console.log(triggerId);
  } finally {
    await producer.disconnect();
  }
}

async function commandSeedDemo(settings: Settings, args: string[]): Promise<void> {
  const flags = parse(args, {
    'course-id': { type: 'string', default: 'do_demo_course' },
    'batch-id': { type: 'string', default: 'demo_batch_1' },
    users: { type: 'string', default: '3000' },
  });
  const courseId = requiredId(flags, 'course-id');
  const batchId = requiredId(flags, 'batch-id');
  const users = wholeNumber(flags, 'users', 3000, 1);
  await withCassandra(settings, async (client) => {
    await insertCourseBatch(client, settings.cassandra.keyspace, courseId, batchId, 'Demo batch');
    const written = await insertEnrolments(
      client,
      settings.cassandra.keyspace,
      demoEnrolments({ courseId, batchId, users, inactiveEvery: 10, completedEvery: 7 }),
    );
    const inactive = Math.floor(users / 10);
    console.log(
      `seeded course '${courseId}' batch '${batchId}': ${written} enrolments (user-000001 … user-${String(users).padStart(6, '0')}), ` +
        `${inactive} inactive (every 10th), ${Math.floor(users / 7)} completed (every 7th)`,
    );
  });
}

async function commandWatch(settings: Settings, args: string[]): Promise<void> {
  const flags = parse(args, {
    limit: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'from-beginning': { type: 'boolean' },
  });
  const limit = wholeNumber(flags, 'limit', Number.MAX_SAFE_INTEGER, 1);
  const timeoutMs = wholeNumber(flags, 'timeout-ms', 0, 0);
  const log = createLogger('warn');
  const consumer = createKafka(settings.kafka, log).consumer({ groupId: `enrolment-sync-watch-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [settings.topics.output], fromBeginning: flags['from-beginning'] === true });
  let seen = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  console.error(`watching ${settings.topics.output} (Ctrl-C stops)`);
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (seen >= limit) return;
      seen++;
      console.log(`${message.key?.toString() ?? ''}\t${message.value?.toString() ?? ''}`);
      if (seen >= limit) finish();
    },
  });
  const timer = timeoutMs > 0 ? setTimeout(finish, timeoutMs) : undefined;
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
  await done;
  clearTimeout(timer);
  await consumer.disconnect();
}

export async function cli(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return;
  }
  const settings = loadConfig(process.env);
  switch (command) {
    case 'run':
      parse(args, {});
      return runService({ api: true, processor: true });
    case 'api':
      parse(args, {});
      return runService({ api: true, processor: false });
    case 'processor':
      parse(args, {});
      return runService({ api: false, processor: true });
    case 'migrate':
      parse(args, {});
      return commandMigrate(settings);
    case 'batch':
      return commandBatch(settings, args);
    case 'seed-demo':
      return commandSeedDemo(settings, args);
    case 'watch':
      return commandWatch(settings, args);
    default:
      throw new SyncError('SYNC_BAD_REQUEST', `unknown command '${command}'\n\n${USAGE}`, { retriable: false });
  }
}

if (require.main === module) {
  cli(process.argv.slice(2)).catch(exitOnError);
}
