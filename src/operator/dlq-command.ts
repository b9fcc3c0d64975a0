import type { ParseArgsConfig } from 'node:util';
import { TASK_HEADER } from '../../processors/enrolment-sync';
import type { Settings } from '../config';
import { SyncError } from '../errors';
import { parseCommandLine } from '../util/args';
import { connectTo, createKafka, translateKafkaError } from '../kafka/client';
import { createProducerClient } from '../kafka/producers';
import { commandLogger, type Logger } from '../observability/logger';
import {
  deadLetterJson,
  DEFAULT_VALUE_BYTES,
  formatDeadLetter,
  parseSelection,
  readDeadLetters,
  replayDeadLetters,
  replayRecord,
  replayRefusal,
  type DeadLetter,
  type DlqFlags,
  type DlqSelection,
} from './dlq';

export const DLQ_USAGE = `  dlq list [filters] [--json] [--bytes N]
                           one line per dead letter: PARTITION:OFFSET, when, code, field, source
                           topic/partition@offset, reason, first bytes of the value (--json: one
                           object a line); reads up to the end as of the start, then exits
  dlq replay (filters | --offset P:O[,P:O…] | --all) [--dry-run] [--skip-refused]
                           send the chosen dead letters back (original key, value and headers, plus
                           dlq.replayed.from.*) in one transaction; a truncated one is refused
    filters: --code CODE --field FIELD --since T --until T (ISO-8601, epoch ms or 30m/2h/7d ago)
             --partition P --from-offset O --to-offset O --limit N [--timeout-ms MS]`;

const SELECTION_OPTIONS: ParseArgsConfig['options'] = {
  code: { type: 'string', multiple: true },
  field: { type: 'string', multiple: true },
  since: { type: 'string' },
  until: { type: 'string' },
  partition: { type: 'string' },
  'from-offset': { type: 'string' },
  'to-offset': { type: 'string' },
  offset: { type: 'string', multiple: true },
  limit: { type: 'string' },
  'timeout-ms': { type: 'string' },
};

const LIST_OPTIONS: ParseArgsConfig['options'] = {
  ...SELECTION_OPTIONS,
  json: { type: 'boolean' },
  bytes: { type: 'string' },
};

const REPLAY_OPTIONS: ParseArgsConfig['options'] = {
  ...SELECTION_OPTIONS,
  'dry-run': { type: 'boolean' },
  'skip-refused': { type: 'boolean' },
  all: { type: 'boolean' },
};

/** How long a read may take to reach the end it fixed at the start (kafkajs retries an outage meanwhile). */
const DEFAULT_TIMEOUT_MS = 90000;

function bad(message: string, field?: string): SyncError {
  return new SyncError('SYNC_BAD_REQUEST', message, { retriable: false, field });
}

function parse(args: string[], options: ParseArgsConfig['options']): DlqFlags {
  return parseCommandLine(args, options).values as DlqFlags;
}

function count(flags: DlqFlags, flag: string, fallback: number, min: number): number {
  const raw = flags[flag];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw) || Number(raw) < min) {
    throw bad(`--${flag} must be a whole number ≥ ${min}, got '${String(raw)}'`, flag);
  }
  return Number(raw);
}

export interface DlqOutput {
  out: (line: string) => void;
  err: (line: string) => void;
}

const consoleOutput: DlqOutput = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** `enrolment-sync dlq list|replay …`: flags are checked before anything connects. */
export async function commandDlq(settings: Settings, args: string[], io: DlqOutput = consoleOutput): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'list') {
    const flags = parse(rest, LIST_OPTIONS);
    const selection = parseSelection(flags, Date.now());
    const bytes = count(flags, 'bytes', DEFAULT_VALUE_BYTES, 0);
    const timeoutMs = count(flags, 'timeout-ms', DEFAULT_TIMEOUT_MS, 1);
    const json = flags.json === true;
    const { matched, scanned } = await withKafka(settings, (kafka, admin) =>
      readDeadLetters(
        kafka,
        admin,
        settings.topics.deadLetter,
        selection,
        { timeoutMs, groupPrefix: settings.processor.groupId },
        (dl) => io.out(json ? JSON.stringify(deadLetterJson(dl)) : formatDeadLetter(dl, bytes)),
      ),
    );
    if (!json) io.err(`${matched} of ${scanned} dead letters read from ${settings.topics.deadLetter}`);
    return;
  }
  if (sub === 'replay') {
    const flags = parse(rest, REPLAY_OPTIONS);
    const selection = parseSelection(flags, Date.now());
    const timeoutMs = count(flags, 'timeout-ms', DEFAULT_TIMEOUT_MS, 1);
    if (!hasSelector(flags) && flags.all !== true) {
      throw bad(
        'dlq replay needs a selection: --offset P:O, a filter (--code, --field, --since, --until, --partition, ' +
          '--from-offset, --to-offset), or --all for every dead letter',
        'offset',
      );
    }
    await replay(
      settings,
      selection,
      { dryRun: flags['dry-run'] === true, skipRefused: flags['skip-refused'] === true, timeoutMs },
      io,
    );
    return;
  }
  throw bad(
    sub === undefined
      ? `dlq needs a subcommand: list or replay\n\n${DLQ_USAGE}`
      : `unknown dlq subcommand '${sub}'\n\n${DLQ_USAGE}`,
  );
}

function hasSelector(flags: DlqFlags): boolean {
  return ['code', 'field', 'since', 'until', 'partition', 'from-offset', 'to-offset', 'offset'].some(
    (f) => flags[f] !== undefined,
  );
}

async function replay(
  settings: Settings,
  requested: DlqSelection,
  opts: { dryRun: boolean; skipRefused: boolean; timeoutMs: number },
  io: DlqOutput,
): Promise<void> {
  const { topics } = settings;
  await withKafka(settings, async (kafka, admin, log) => {
    const chosen: DeadLetter[] = [];
    const { selection } = await readDeadLetters(
      kafka,
      admin,
      topics.deadLetter,
      requested,
      { timeoutMs: opts.timeoutMs, groupPrefix: settings.processor.groupId },
      (dl) => chosen.push(dl),
    );
    const missing = selection.offsets.filter(
      (o) => !chosen.some((dl) => dl.partition === o.partition && BigInt(dl.offset) === o.offset),
    );
    if (missing.length > 0) {
      throw new SyncError(
        'SYNC_NOT_FOUND',
        `no dead letter at ${missing.map((o) => `${o.partition}:${o.offset}`).join(', ')} in ${topics.deadLetter}` +
          ' (or it does not match the other filters); nothing was replayed',
        { retriable: false, field: 'offset' },
      );
    }
    const refused = chosen.flatMap((dl) => {
      const why = replayRefusal(dl);
      return why === undefined ? [] : [{ dl, why }];
    });
    for (const { dl, why } of refused) io.err(`refused ${dl.partition}:${dl.offset}: ${why}`);
    if (refused.length > 0 && !opts.skipRefused) {
      throw bad(
        `${refused.length} of the ${chosen.length} chosen dead letters cannot be replayed (see above); nothing was ` +
          'replayed. Narrow the selection, or add --skip-refused to replay the others',
        'skip-refused',
      );
    }
    const replayable = chosen.filter((dl) => replayRefusal(dl) === undefined);
    let taskPartitions = 0;
    try {
      taskPartitions = (await admin.fetchTopicMetadata({ topics: [topics.tasks] })).topics[0]?.partitions.length ?? 0;
    } catch (err) {
      // Without it a dead-lettered task could not go back to its own partition.
      if (replayable.some((dl) => dl.headers[TASK_HEADER] !== undefined)) {
        throw translateKafkaError(err, `reading the partitions of ${topics.tasks}`);
      }
    }
    const target = { triggerTopic: topics.trigger, taskTopic: topics.tasks, taskPartitions };
    if (opts.dryRun) {
      for (const dl of replayable) {
        io.out(
          `would replay ${formatDeadLetter(dl)}  to=${replayRecord(dl, topics.deadLetter, target, new Date()).topic}`,
        );
      }
      io.out(`${replayable.length} dead letters would be replayed (dry run: nothing was sent)`);
      return;
    }
    // The adapter is created only now: a dry run or a refusal never loads the librdkafka binding.
    const producers = await createProducerClient(settings.kafka, kafka, log);
    let sent: Awaited<ReturnType<typeof replayDeadLetters>>;
    try {
      sent = await replayDeadLetters(producers, replayable, topics.deadLetter, target, settings.processor.groupId);
    } finally {
      await producers.close();
    }
    for (const { dl, topic } of sent) io.out(`replayed ${dl.partition}:${dl.offset} to ${topic}`);
    io.out(`${sent.length} dead letters replayed`);
  });
}

async function withKafka<T>(
  settings: Settings,
  fn: (
    kafka: ReturnType<typeof createKafka>,
    admin: ReturnType<ReturnType<typeof createKafka>['admin']>,
    log: Logger,
  ) => Promise<T>,
): Promise<T> {
  const log = commandLogger(settings.logLevel);
  const kafka = createKafka(settings.kafka, log);
  const admin = kafka.admin();
  await connectTo(admin, settings.kafka.brokers);
  try {
    return await fn(kafka, admin, log);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
