import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { RawAvroSchema } from '@kafkajs/confluent-schema-registry/dist/@types';
import type {
  BatchPage,
  BatchReadReport,
  EnrolmentColumns,
  EnrolmentRow,
  KeyPage,
  ReadPosition,
} from '../../src/cassandra/enrolments';
import { throwIfAborted } from '../../src/util/async';
import { MAX_TOKEN, MIN_TOKEN } from '../../src/cassandra/token-ranges';
import { decodeJsonOrAvro } from '../../src/kafka/codecs';
import type {
  InputMessage,
  OutputChunk,
  OutputRecord,
  ProcessContext,
  StatusIdentity,
  StreamProcessor,
} from '../../src/streams/types';
import { loadAvroSchema, TRIGGER_SCHEMA_FILE } from '../../src/schemas';
import { policyFor, toSyncRecords, type EnrolmentPolicy } from './expand';
import type { SyncEventEncoder } from './sync-event';
import { isTask, parseTask, shareDone, splitForTasks, type SyncTask } from './task';
import { parseTrigger, type CarriedEnrolments, type SyncTrigger } from './trigger';

export const PROCESSOR_NAME = 'enrolment-sync';

/** Triggers of up to this many users are expanded together with their neighbours (see the runtime). */
export const SMALL_TRIGGER_USERS = 100;

/** Records on the task topic carry this header, so a task is never mistaken for a trigger. */
export const TASK_HEADER = 'enrolment-sync.task';

/** The reads the processor needs; src/cassandra/enrolments.ts provides them. */
export interface EnrolmentSource {
  findByKeysInChunks(
    courseId: string,
    batchId: string,
    userIds: readonly string[],
    chunkSize: number,
    signal?: AbortSignal,
    from?: number,
  ): AsyncIterable<KeyPage>;
  readBatch(
    courseId: string,
    batchId: string,
    signal: AbortSignal,
    opts?: {
      resumeFrom?: ReadPosition;
      report?: (r: BatchReadReport) => void;
      stopAtScan?: boolean;
      columns?: EnrolmentColumns;
    },
  ): AsyncIterable<BatchPage>;
  /** Start tokens of the ranges the cluster's nodes own, to align tasks with (may be empty). */
  ringTokens?(): bigint[];
}

/** What the processor may ask of trigger status: is this batch already being synced? */
export interface RunningTriggers {
  findRunning(courseId: string, batchId: string, signal?: AbortSignal): Promise<{ triggerId: string } | undefined>;
}

export interface FanOutSettings {
  /** How many tasks a scanned batch is split into, and how many partitions the task topic has. */
  tasks: number;
  partitions: number;
  /** Ranges each task reads at once (the reader's scan concurrency). */
  rangesPerTask: number;
}

export interface EnrolmentSyncDeps {
  enrolments: EnrolmentSource;
  encode: SyncEventEncoder;
  defaults: EnrolmentPolicy;
  /** Needed only to read triggers in the Confluent Avro wire format. */
  registry?: SchemaRegistry;
  keyChunkSize: number;
  /** Split whole-batch scans over the group; without it one member reads the whole batch. */
  fanOut?: FanOutSettings;
  /** Lets a second whole-batch trigger of a running batch join it instead of reading it again. */
  running?: RunningTriggers;
  /**
   * How old a trigger's carried enrolments may be (from their readAt, by `now`) for the processor
   * to use them instead of reading Cassandra; 0 never uses them (see CarriedEnrolments).
   */
  carriedEnrolmentsMaxAgeMs: number;
  now?: () => number;
}

export type SyncInput = SyncTrigger | SyncTask;

/**
 * Where an input stands: how many of its listed users were read, the whole-batch read position,
 * that it was split into tasks, or that it joined a running trigger.
 */
type InputPosition = { keys: number } | { batch: ReadPosition } | { fannedOut: number } | { joined: string };

const FULL_RING = [{ start: MIN_TOKEN.toString(), end: MAX_TOKEN.toString() }];

/**
 * The carried rows of `userIds` in the chunks the Cassandra read would give (same order, same
 * `next`), so checkpoints, status and events are those of a read; a listed user without a row is
 * left out, as a read leaves out a user it does not find.
 */
function* carriedPages(
  userIds: readonly string[],
  carried: CarriedEnrolments,
  chunkSize: number,
  signal: AbortSignal,
  from: number,
): Generator<KeyPage> {
  const byUser = new Map(carried.rows.map((row) => [row.userId, row]));
  for (let i = from; i < userIds.length; i += chunkSize) {
    throwIfAborted(signal);
    const slice = userIds.slice(i, i + chunkSize);
    const rows: EnrolmentRow[] = [];
    for (const userId of slice) {
      const row = byUser.get(userId);
      if (row) rows.push(row);
    }
    yield { rows, next: i + slice.length };
  }
}

export function createEnrolmentSyncProcessor(deps: EnrolmentSyncDeps): StreamProcessor<SyncInput> {
  const readerSchema = loadAvroSchema(TRIGGER_SCHEMA_FILE) as unknown as RawAvroSchema;
  const now = deps.now ?? Date.now;

  /** The trigger's carried enrolments when they are recent enough to stand in for a read. */
  function usableCarried(trigger: SyncTrigger, ctx: ProcessContext): CarriedEnrolments | undefined {
    const carried = trigger.enrolments;
    if (!carried) return undefined;
    const age = now() - carried.readAt;
    // Either way round: a readAt far in the future (a producer's broken clock) is not fresh either.
    if (Math.abs(age) <= deps.carriedEnrolmentsMaxAgeMs) return carried;
    ctx.log.info(
      { ageMs: age, maxAgeMs: deps.carriedEnrolmentsMaxAgeMs },
      'carried enrolments too old: reading them again',
    );
    return undefined;
  }

  async function* byKeys(
    trigger: SyncTrigger,
    userIds: string[],
    resume: InputPosition | undefined,
    ctx: ProcessContext,
  ) {
    const policy = policyFor(trigger, deps.defaults);
    const from = resume && 'keys' in resume ? resume.keys : 0;
    const carried = usableCarried(trigger, ctx);
    const pages = carried
      ? carriedPages(userIds, carried, deps.keyChunkSize, ctx.signal, from)
      : deps.enrolments.findByKeysInChunks(
          trigger.courseId,
          trigger.batchId,
          userIds,
          deps.keyChunkSize,
          ctx.signal,
          from,
        );
    for await (const page of pages) {
      const records = toSyncRecords(trigger, page.rows, policy, deps.encode);
      const position: InputPosition = { keys: page.next };
      yield { records, position, rowsRead: page.rows.length, progress: page.next / userIds.length };
    }
  }

  /** Reads ranges (a task's, or a whole batch's) and reports progress against `initial`. */
  async function* read(
    source: SyncTrigger | SyncTask,
    position: ReadPosition | undefined,
    initial: ReadPosition['ranges'],
    ctx: ProcessContext,
    stopAtScan: boolean,
  ): AsyncGenerator<OutputChunk, ReadPosition | undefined> {
    const policy = policyFor(source, deps.defaults);
    let last: ReadPosition | undefined;
    const pages = deps.enrolments.readBatch(source.courseId, source.batchId, ctx.signal, {
      resumeFrom: position,
      report: (report) => ctx.log.info(report, 'whole-batch read plan'),
      stopAtScan,
      // Only what the policy looks at is read (by default not status: completed users are kept).
      columns: { active: !policy.includeInactive, status: !policy.includeCompleted },
    });
    for await (const page of pages) {
      last = page.position;
      if (stopAtScan && page.rows.length === 0 && page.position.plan === 'scan' && page.position.ranges.length > 0) {
        return page.position; // the rest is to be split into tasks
      }
      const records = toSyncRecords(source, page.rows, policy, deps.encode);
      const out: InputPosition = { batch: page.position };
      yield { records, position: out, rowsRead: page.rows.length, progress: shareDone(initial, page.position.ranges) };
    }
    return last?.ranges.length === 0 ? undefined : last;
  }

  function taskRecords(trigger: SyncTrigger, rest: ReadPosition, fanOut: FanOutSettings): OutputRecord[] {
    const groups = splitForTasks(rest.ranges, deps.enrolments.ringTokens?.() ?? [], fanOut.tasks, fanOut.rangesPerTask);
    return groups.map((ranges, index) => {
      const task: SyncTask = {
        kind: 'task',
        triggerId: trigger.triggerId,
        index,
        count: groups.length,
        courseId: trigger.courseId,
        batchId: trigger.batchId,
        requestedBy: trigger.requestedBy,
        requestedAt: trigger.requestedAt,
        source: trigger.source,
        includeInactive: trigger.includeInactive,
        includeCompleted: trigger.includeCompleted,
        plan: 'scan',
        ranges,
      };
      return {
        key: `${trigger.triggerId}#${index}`,
        value: JSON.stringify(task),
        partition: index % Math.max(1, fanOut.partitions),
        headers: { [TASK_HEADER]: '1' },
      };
    });
  }

  async function* wholeBatch(trigger: SyncTrigger, resume: InputPosition | undefined, ctx: ProcessContext) {
    if (resume && ('fannedOut' in resume || 'joined' in resume)) return;
    if (!resume && deps.running) {
      const running = await deps.running.findRunning(trigger.courseId, trigger.batchId, ctx.signal);
      if (running && running.triggerId !== trigger.triggerId) {
        ctx.log.info({ joinedTo: running.triggerId }, 'batch already being synced: joined the running trigger');
        const position: InputPosition = { joined: running.triggerId };
        yield { records: [], position, rowsRead: 0, progress: 1, note: { joinedTo: running.triggerId } };
        return;
      }
    }
    const from = resume && 'batch' in resume ? resume.batch : undefined;
    const fanOut = deps.fanOut && deps.fanOut.tasks > 1 ? deps.fanOut : undefined;
    const reading = read(trigger, from, FULL_RING, ctx, fanOut !== undefined);
    let next: IteratorResult<OutputChunk, ReadPosition | undefined>;
    while (!(next = await reading.next()).done) yield next.value;
    const rest = next.value;
    if (rest && fanOut) {
      const spawn = taskRecords(trigger, rest, fanOut);
      ctx.log.info({ tasks: spawn.length }, 'whole batch split into token-range tasks');
      const position: InputPosition = { fannedOut: spawn.length };
      yield { records: [], position, rowsRead: 0, spawn, note: { tasks: spawn.length, plan: 'scan' } };
    }
  }

  return {
    name: PROCESSOR_NAME,

    async decode(message: InputMessage): Promise<SyncInput> {
      const value = await decodeJsonOrAvro(message.value, deps.registry, readerSchema);
      if (message.headers[TASK_HEADER] !== undefined) return parseTask(value);
      return parseTrigger(value, message);
    },

    isSmall(input: SyncInput): boolean {
      return !isTask(input) && input.userIds !== null && input.userIds.length <= SMALL_TRIGGER_USERS;
    },

    describe(input: SyncInput): Record<string, unknown> {
      if (isTask(input)) {
        return {
          triggerId: input.triggerId,
          task: `${input.index + 1}/${input.count}`,
          courseId: input.courseId,
          batchId: input.batchId,
          source: input.source,
        };
      }
      return {
        triggerId: input.triggerId,
        courseId: input.courseId,
        batchId: input.batchId,
        users: input.userIds?.length ?? 'all',
        source: input.source,
      };
    },

    statusOf(input: SyncInput): StatusIdentity {
      if (isTask(input)) return { triggerId: input.triggerId, part: `task:${input.index}` };
      return {
        triggerId: input.triggerId,
        part: 'trigger',
        fields: {
          courseId: input.courseId,
          batchId: input.batchId,
          requestedBy: input.requestedBy,
          requestedAt: input.requestedAt,
          wholeBatch: input.userIds === null,
        },
      };
    },

    statusOfUndecodable(message: InputMessage): StatusIdentity | undefined {
      // Best effort: a JSON trigger that names its triggerId but fails a check reports the failure.
      if (message.headers[TASK_HEADER] !== undefined || !message.value || message.value[0] !== 0x7b) return undefined;
      try {
        const { triggerId } = JSON.parse(message.value.toString('utf8')) as { triggerId?: unknown };
        if (typeof triggerId === 'string' && triggerId.trim() !== '' && triggerId.length <= 1024) {
          return { triggerId, part: 'trigger' };
        }
      } catch {
        // not JSON: no status to report to
      }
      return undefined;
    },

    async *process(input: SyncInput, ctx: ProcessContext): AsyncIterable<OutputChunk> {
      const resume = ctx.resumeFrom as InputPosition | undefined;
      if (isTask(input)) {
        const from = resume && 'batch' in resume ? resume.batch : { plan: input.plan, ranges: input.ranges };
        yield* read(input, from, input.ranges, ctx, false);
        return;
      }
      if (input.userIds !== null) yield* byKeys(input, input.userIds, resume, ctx);
      else yield* wholeBatch(input, resume, ctx);
    },
  };
}
