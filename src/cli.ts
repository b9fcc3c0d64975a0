#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { ParseArgsConfig } from 'node:util';
import { connectCassandra, createCassandra } from './cassandra/client';
import { EnrolmentReader } from './cassandra/enrolments';
import { demoEnrolments, insertCourseBatch, insertEnrolments } from './cassandra/seed';
import { loadConfig, type Settings } from './config';
import { effectiveSettings, readEnvironment } from './config-schema';
import { configTable } from './config-table';
import { messageOf, SyncError } from './errors';
import { connectTo, createKafka } from './kafka/client';
import { isConfluentAvro } from './kafka/codecs';
import { createProducerClient } from './kafka/producers';
import { createRegistry } from './kafka/registry';
import { createTriggerPublisher } from './kafka/trigger-publisher';
import { exitOnError, runService } from './main';
import { migrate } from './migrate';
import { commandLogger } from './observability/logger';
import { MAX_ID_LENGTH } from '../processors/enrolment-sync/trigger';
import { parseBatchFile, type BatchRow } from './operator/batch-file';
import { commandDlq, DLQ_USAGE } from './operator/dlq-command';
import { describeStatus, formatSeconds, isFinal } from './operator/progress';
import { StatusStore } from './streams/status-store';
import { parseCommandLine } from './util/args';
import type { TriggerStatus } from './streams/status';

const USAGE = `usage: enrolment-sync <command> [options]

commands:
  run                      the API and the processor together (the single-machine default)
  api                      the API only
  processor                the processor only
  migrate                  create keyspace, tables, index, topics and schemas (idempotent)
  batch --course-id C --batch-id B [--include-inactive] [--exclude-completed] [--requested-by WHO] [--wait]
                           sync every enrolled user of a batch; prints the triggerId (a batch already
                           being synced is joined: its triggerId is printed). --wait shows progress
                           until done (exit 0) or failed (exit 1)
  batch --file batches.csv [--wait]
                           the same for every courseId,batchId line of a file; a bad line is named
  status <triggerId> [--json]
                           a trigger's state, events, tasks, rate and ETA
  seed-demo [--course-id C] [--batch-id B] [--users N]
                           write a demo course batch (every 10th user inactive, every 7th completed)
  watch [--limit N] [--timeout-ms MS] [--from-beginning]
                           print the sync events arriving on the output topic
${DLQ_USAGE}
  config [--json | --markdown]
                           the effective settings (secrets shown as (set) or (unset)); --markdown:
                           the README's table of every variable

Configuration comes from environment variables (see README.md); defaults are the local servers.`;

type Flags = Record<string, string | boolean | undefined>;

function parse(args: string[], options: ParseArgsConfig['options']): Flags {
  return parseCommandLine(args, options).values as Flags;
}

function parseWithPositionals(
  args: string[],
  options: ParseArgsConfig['options'],
): { values: Flags; positionals: string[] } {
  const { values, positionals } = parseCommandLine(args, options, true);
  return { values: values as Flags, positionals };
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
    await connectCassandra(client, settings.cassandra.contactPoints);
    return await fn(client);
  } finally {
    await client.shutdown();
  }
}

async function commandMigrate(settings: Settings): Promise<void> {
  const log = commandLogger(settings.logLevel);
  const kafka = createKafka(settings.kafka, log);
  const admin = kafka.admin();
  await connectTo(admin, settings.kafka.brokers);
  try {
    await withCassandra(settings, async (cassandra) => {
      const result = await migrate(settings, {
        cassandra,
        admin,
        registry: createRegistry(settings.registry),
        log,
        replication: settings.cassandra.replication,
      });
      console.log(
        `migrated: keyspace ${settings.cassandra.keyspace} (${result.cqlStatements} statements); ` +
          `topics ${settings.topics.trigger}, ${settings.topics.output}, ${settings.topics.deadLetter}` +
          (result.createdTopics.length > 0 ? ` (created ${result.createdTopics.join(', ')})` : ' (already there)') +
          `; schema ids: sync event ${result.schemas.syncEventSchemaId}, trigger ${result.schemas.triggerSchemaId}`,
      );
      for (const { topic, partitions } of result.partitionCounts) {
        console.error(
          `warning: ${topic} already has ${partitions} partition(s), not the ${settings.topics.partitions} TOPIC_PARTITIONS asks for; ` +
            'migrate leaves existing topics as they are (more partitions would move keys, and status records are found by partition count)',
        );
      }
    });
  } finally {
    await admin.disconnect();
  }
}

/** The status topic read back, for commands that queue or watch triggers. */
async function withStatus<T>(settings: Settings, fn: (store: StatusStore) => Promise<T>): Promise<T> {
  const log = commandLogger(settings.logLevel);
  const kafka = createKafka(settings.kafka, log);
  const admin = kafka.admin();
  await connectTo(admin, settings.kafka.brokers);
  const store = new StatusStore(kafka, admin, settings.topics.status, log, `${settings.processor.groupId}.cli`);
  try {
    await store.start();
    return await fn(store);
  } finally {
    await store.stop().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

async function commandBatch(settings: Settings, args: string[]): Promise<void> {
  const flags = parse(args, {
    'course-id': { type: 'string' },
    'batch-id': { type: 'string' },
    file: { type: 'string' },
    'include-inactive': { type: 'boolean' },
    'exclude-completed': { type: 'boolean' },
    'requested-by': { type: 'string' },
    wait: { type: 'boolean' },
    'timeout-ms': { type: 'string' },
  });
  let rows: BatchRow[];
  if (typeof flags.file === 'string') {
    if (flags['course-id'] !== undefined || flags['batch-id'] !== undefined) {
      throw new SyncError('SYNC_BAD_REQUEST', '--file and --course-id/--batch-id do not go together', {
        retriable: false,
        field: 'file',
      });
    }
    let text: string;
    try {
      text = readFileSync(flags.file, 'utf8');
    } catch (err) {
      throw new SyncError('SYNC_BAD_REQUEST', `--file: cannot read ${flags.file}: ${(err as Error).message}`, {
        retriable: false,
        field: 'file',
      });
    }
    rows = parseBatchFile(text, flags.file);
  } else {
    rows = [{ courseId: requiredId(flags, 'course-id'), batchId: requiredId(flags, 'batch-id'), line: 0 }];
  }
  const timeoutMs = wholeNumber(flags, 'timeout-ms', 0, 0);
  const where = (row: BatchRow) => (row.line > 0 ? `${flags.file} line ${row.line}: ` : '');
  const missing = await withCassandra(settings, async (client) => {
    const reader = new EnrolmentReader(client, settings.cassandra.keyspace, settings.processor);
    const absent: string[] = [];
    for (const row of rows) {
      if (!(await reader.batchExists(row.courseId, row.batchId))) {
        absent.push(
          `${where(row)}no batch '${row.batchId}' of course '${row.courseId}' in ${settings.cassandra.keyspace}.course_batch`,
        );
      }
    }
    return absent;
  });
  if (missing.length > 0) {
    throw new SyncError('SYNC_NOT_FOUND', missing.join('\n'), {
      retriable: false,
      field: rows.length > 1 ? 'file' : 'batch-id',
    });
  }
  const log = commandLogger(settings.logLevel);
  // The client KAFKA_CLIENT names, as for the API's triggers: one setting decides how we produce.
  const producers = await createProducerClient(settings.kafka, createKafka(settings.kafka, log), log);
  const producer = producers.idempotentProducer();
  try {
    await connectTo({ connect: () => producer.open() }, settings.kafka.brokers);
    await withStatus(settings, async (store) => {
      const publish = createTriggerPublisher(producer, settings.topics.trigger, {
        status: { topic: settings.topics.status, partitions: store.partitionCount },
      });
      const queued: string[] = [];
      for (const row of rows) {
        // A batch already being synced is joined, not read twice.
        const running = await store.findRunning(row.courseId, row.batchId);
        if (running) {
          console.error(
            `${where(row)}batch '${row.batchId}' is already being synced: joined trigger ${running.triggerId}`,
          );
          console.log(running.triggerId);
          queued.push(running.triggerId);
          continue;
        }
        const triggerId = randomUUID();
        await publish({
          triggerId,
          courseId: row.courseId,
          batchId: row.batchId,
          userIds: null,
          requestedBy:
            typeof flags['requested-by'] === 'string' ? flags['requested-by'] : (process.env.USER ?? 'operator'),
          requestedAt: Date.now(),
          source: 'batch',
          includeInactive: flags['include-inactive'] === true ? true : null,
          includeCompleted: flags['exclude-completed'] === true ? false : null,
        });
        console.log(triggerId);
        queued.push(triggerId);
      }
      if (flags.wait === true) {
        const finals = await followTriggers(store, queued, { timeoutMs, tty: process.stderr.isTTY === true });
        const failed = finals.filter((f) => f.state !== 'done');
        if (failed.length > 0) {
          throw new SyncError('SYNC_NOT_FOUND', failed.map((f) => `trigger ${describeStatus(f)}`).join('\n'), {
            retriable: false,
          });
        }
      }
    });
  } finally {
    await producer.close();
    await producers.close();
  }
}

/**
 * Watches triggers until each is done or failed (a trigger that joined another is followed to
 * that one): a progress bar per trigger on a terminal, a line per change every two seconds
 * otherwise. Returns the final statuses.
 */
async function followTriggers(
  store: StatusStore,
  triggerIds: string[],
  opts: { timeoutMs: number; tty: boolean },
): Promise<TriggerStatus[]> {
  const deadline = opts.timeoutMs > 0 ? Date.now() + opts.timeoutMs : Infinity;
  const bars = opts.tty
    ? new MultiBar(
        {
          format: '{id} {state} [{bar}] {percentage}% | {events} events | {rate}/s | ETA {remaining}',
          barsize: 24,
          hideCursor: true,
          clearOnComplete: false,
          stream: process.stderr,
          etaBuffer: 20,
        },
        Presets.shades_classic,
      )
    : undefined;
  const barOf = new Map<string, SingleBar>();
  const lastLine = new Map<string, string>();
  let lastPrint = 0;
  try {
    for (;;) {
      const statuses: TriggerStatus[] = [];
      for (const id of triggerIds) {
        let status = await store.get(id);
        // Joined another trigger: its progress is this one's.
        if (status?.state === 'joined' && status.joinedTo) status = (await store.get(status.joinedTo)) ?? status;
        statuses.push(
          status ?? { triggerId: id, state: 'accepted', eventsProduced: 0, rowsRead: 0, tasks: { done: 0, total: 0 } },
        );
      }
      const allFinal = statuses.every(isFinal);
      statuses.forEach((s, i) => {
        const id = triggerIds[i] as string;
        if (bars) {
          const payload = {
            id: id.slice(0, 8),
            events: s.eventsProduced.toLocaleString('en-US'),
            rate: (s.eventsPerSecond ?? 0).toLocaleString('en-US'),
            remaining: s.etaSeconds === undefined ? '-' : formatSeconds(s.etaSeconds),
            state: s.state,
          };
          const value = Math.round((s.progress ?? 0) * 1000);
          const bar = barOf.get(id);
          if (bar) bar.update(value, payload);
          else barOf.set(id, bars.create(1000, value, payload));
        } else if (allFinal || Date.now() - lastPrint >= 2000) {
          const line = describeStatus({ ...s, triggerId: id });
          if (lastLine.get(id) !== line) console.error(line);
          lastLine.set(id, line);
        }
      });
      if (!bars && Date.now() - lastPrint >= 2000) lastPrint = Date.now();
      if (allFinal) return statuses;
      if (Date.now() > deadline) {
        throw new SyncError('SYNC_TIMEOUT', `triggers not finished within ${opts.timeoutMs} ms`, { retriable: false });
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  } finally {
    bars?.stop();
  }
}

async function commandStatus(settings: Settings, args: string[]): Promise<void> {
  const { values, positionals } = parseWithPositionals(args, { json: { type: 'boolean' } });
  const triggerId = positionals[0];
  if (positionals.length !== 1 || triggerId === undefined || triggerId.trim() === '') {
    throw new SyncError('SYNC_BAD_REQUEST', 'usage: status <triggerId> [--json]', {
      retriable: false,
      field: 'triggerId',
    });
  }
  await withStatus(settings, async (store) => {
    const status = await store.get(triggerId);
    if (!status)
      throw new SyncError('SYNC_NOT_FOUND', `no trigger '${triggerId}'`, { retriable: false, field: 'triggerId' });
    console.log(values.json === true ? JSON.stringify(status, null, 2) : describeStatus(status));
  });
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

/** Checked like every command's (one error naming every bad variable), then shown redacted. */
function commandConfig(args: string[]): void {
  const flags = parse(args, { json: { type: 'boolean' }, markdown: { type: 'boolean' } });
  if (flags.markdown === true) return console.log(configTable());
  loadConfig(process.env);
  const settings = effectiveSettings(readEnvironment(process.env));
  if (flags.json === true) {
    const byName = Object.fromEntries(settings.map((s) => [s.name, { value: s.value, source: s.source }]));
    return console.log(JSON.stringify(byName, null, 2));
  }
  const width = Math.max(...settings.map((s) => s.name.length));
  for (const s of settings)
    console.log(`${s.name.padEnd(width)}  ${s.value}${s.source === 'env' ? '' : '  (default)'}`);
}

/**
 * An event as a person reads it: JSON as it is, Confluent Avro (SYNC_EVENT_FORMAT=avro) decoded
 * through the registry into the same JSON shape, instead of its bytes printed as text.
 */
async function readableEvent(value: Buffer | null, registry: SchemaRegistry): Promise<string> {
  if (value === null) return '(null)';
  if (!isConfluentAvro(value)) return value.toString();
  try {
    return JSON.stringify(await registry.decode(value));
  } catch (err) {
    return `(Confluent Avro, schema id ${value.readUInt32BE(1)}, not decoded: ${messageOf(err)})`;
  }
}

async function commandWatch(settings: Settings, args: string[]): Promise<void> {
  const flags = parse(args, {
    limit: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'from-beginning': { type: 'boolean' },
  });
  const limit = wholeNumber(flags, 'limit', Number.MAX_SAFE_INTEGER, 1);
  const timeoutMs = wholeNumber(flags, 'timeout-ms', 0, 0);
  const log = commandLogger(settings.logLevel);
  const consumer = createKafka(settings.kafka, log).consumer({ groupId: `enrolment-sync-watch-${randomUUID()}` });
  await connectTo(consumer, settings.kafka.brokers);
  await consumer.subscribe({ topics: [settings.topics.output], fromBeginning: flags['from-beginning'] === true });
  let seen = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  console.error(`watching ${settings.topics.output} (Ctrl-C stops)`);
  const registry = createRegistry(settings.registry);
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (seen >= limit) return;
      seen++;
      console.log(`${message.key?.toString() ?? ''}\t${await readableEvent(message.value, registry)}`);
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

/**
 * The usage lines of one command (each of its forms with the lines that explain it), or
 * undefined for a command the usage does not list.
 */
export function usageOf(command: string): string | undefined {
  const lines: string[] = [];
  let inCommand = false;
  for (const line of USAGE.split('\n')) {
    const form = /^ {2}(\S+)/.exec(line);
    if (form) inCommand = form[1] === command;
    else if (!/^ {3,}\S/.test(line)) inCommand = false;
    if (inCommand) lines.push(line);
  }
  return lines.length > 0 ? `usage: enrolment-sync\n${lines.join('\n')}` : undefined;
}

export async function cli(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return;
  }
  // `<command> --help` answers before anything checks the command's options or the environment.
  if (args.includes('--help') || args.includes('-h')) {
    const usage = usageOf(command);
    if (usage !== undefined) {
      console.log(usage);
      return;
    }
  }
  // Before loadConfig: --markdown needs no environment, and config reports a bad one itself.
  if (command === 'config') return commandConfig(args);
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
    case 'status':
      return commandStatus(settings, args);
    case 'seed-demo':
      return commandSeedDemo(settings, args);
    case 'watch':
      return commandWatch(settings, args);
    case 'dlq':
      return commandDlq(settings, args);
    default:
      throw new SyncError('SYNC_BAD_REQUEST', `unknown command '${command}'\n\n${USAGE}`, { retriable: false });
  }
}

if (require.main === module) {
  cli(process.argv.slice(2)).catch(exitOnError);
}
