import type { ProducerRecord as Message } from '../kafka/ports';
import type { RetrySettings } from '../config';
import { errorCodeOf, errorKind, messageOf, SyncError } from '../errors';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { sleep } from '../util/async';
import { randomUUID } from 'node:crypto';
import {
  isRestoreMarker,
  restoreMarkerKey,
  restoreMarkerMessage,
  type Checkpoint,
  type RestoreMarker,
} from './checkpoints';
import type { CompactedTable } from './compacted-table';
import { deadLetterRecord, fitDeadLetter } from './dead-letter';
import { backoffDelay } from './retry';
import type { CommitOptions, PartitionSink } from './sink';
import { statusKey, statusMessage, type PartState, type WorkPart } from './status';
import type { InputMessage, OutputChunk, OutputRecord, StreamProcessor } from './types';

export interface WorkerSettings {
  retry: RetrySettings;
  /** A transaction is committed once it holds this many records… */
  txnMaxRecords: number;
  /** …or has been open this long (also how often a sparse read writes a checkpoint). */
  txnMaxMs: number;
  /** At most this many consecutive small inputs share one transaction. */
  maxWave: number;
  maxDeadLetterBytes: number;
  /** Records handed to the sink at a time under an output rate limit, so output is spread out. */
  paceSlice?: number;
}

export interface ProcessedEvent {
  topic: string;
  partition: number;
  offset: string;
  outcome: 'done' | 'dead-lettered';
  records: number;
  ms: number;
  code?: string;
  resumed?: boolean;
}

export interface WorkerContext {
  /** The group generation the batch was fetched in: a new one means a new assignment, so restore. */
  generation: number;
  /** Aborted when the partition is revoked, a heartbeat fails or the runtime stops. */
  signal: AbortSignal;
  resolveOffset(offset: string): void;
}

interface WorkerDeps<I> {
  processor: StreamProcessor<I>;
  sink: PartitionSink;
  checkpoints: CompactedTable<Checkpoint | RestoreMarker>;
  checkpointTopic: string;
  checkpointKey: string;
  checkpointPartition: number;
  /** The group's committed offset for this partition, read after fencing. */
  committedOffset(): Promise<string | undefined>;
  settings: WorkerSettings;
  log: Logger;
  metrics?: Metrics;
  onProcessed(event: ProcessedEvent): void;
  /** Where inputs report their status, and where spawned inputs go. */
  statusTopic?: { topic: string; partitions: number };
  taskTopic?: string;
  /** Waits until `records` more may be produced under the output rate limit. */
  pace?(records: number, signal: AbortSignal): Promise<void>;
  /** Called when an input is about to commit the inputs it spawned into the task topic. */
  onSpawning?(): void;
}

interface StatusUpdate {
  state: PartState;
  produced: number;
  rowsRead: number;
  startedAt: number;
  progress?: number;
  error?: unknown;
  note?: Record<string, unknown>;
}

interface WaveItem<I> {
  message: InputMessage;
  input: I | undefined;
  small: boolean;
  /** Bad input found while decoding: it rides in the wave's transaction as a dead letter. */
  badInput?: unknown;
}

type SmallOutcome = { records: OutputRecord[] } | { failure: unknown };

/** A restore waits this long for the checkpoint table to read the marker it committed. */
const RESTORE_MARKER_WAIT_MS = 60_000;

/**
 * One input partition: restores on assignment (fence, committed offset, checkpoint), then turns
 * its messages into committed units: a large input as a run of transactions, each ending with the
 * checkpoint of where it got, the last also carrying the input offset; a wave of small inputs as
 * one transaction. Errors are acted on by kind (errors.ts): outages wait and resume from the last
 * checkpoint, transient failures are retried a few times and then dead-lettered, bad input is
 * dead-lettered at once, fatal errors stop the runtime.
 */
export class PartitionWorker<I> {
  private restoredIn = -1;
  /** A restore under way (prepare's or a batch's), shared by whoever needs it for that generation. */
  private restoring: { generation: number; done: Promise<void> } | undefined;
  /** The last committed checkpoint, if it is about an input not yet finished. */
  private current: Checkpoint | undefined;
  private skipBelow: bigint | undefined;
  /** Stops a restore started by prepare once the partition is ours no more (close). */
  private preparing: AbortController | undefined;

  constructor(
    readonly partition: number,
    private readonly deps: WorkerDeps<I>,
  ) {}

  /** Forget the restore: the next batch fences and reads offset and checkpoint again. */
  invalidate(): void {
    this.restoredIn = -1;
  }

  async close(): Promise<void> {
    this.invalidate();
    this.preparing?.abort(new SyncError('SYNC_ABORTED', 'partition no longer ours', { retriable: false }));
    this.preparing = undefined;
    await this.deps.sink.close();
  }

  /**
   * Restores ahead of the partition's first batch of `generation`, in the background: the first
   * task of a fanned-out batch then starts on arrival instead of after fencing a producer, a
   * marker transaction and a checkpoint read (170-225 ms, docs/benchmarks.md, "Issue 11, cpu4").
   * A failure is left for the first batch's own restore to meet and handle.
   */
  prepare(generation: number, signal: AbortSignal): void {
    if (this.restoredIn === generation || this.restoring?.generation === generation) return;
    // The runtime's signal only says it is stopping; a rebalance that moves the partition away
    // closes this worker, and a restore still running then would fence the new owner's producer.
    // Only close() aborts it: a restore of an earlier generation shares this worker's sink, and
    // closing that sink under a newer restore would take the newer one's producer.
    const preparing = new AbortController();
    this.preparing = preparing;
    this.restore(generation, AbortSignal.any([signal, preparing.signal])).catch((err: unknown) =>
      this.deps.log.debug({ err, partition: this.partition }, 'restore ahead of the first batch failed'),
    );
  }

  private async restore(generation: number, signal: AbortSignal): Promise<void> {
    if (this.restoredIn === generation) return;
    const under = this.restoring;
    if (under?.generation === generation) {
      // A failed restore ahead of time is not this batch's failure: it restores again itself.
      await under.done.catch(() => undefined);
      if (this.restoredIn === generation) return;
    }
    const done = this.restoreNow(generation, signal);
    this.restoring = { generation, done };
    try {
      await done;
    } finally {
      if (this.restoring?.done === done) this.restoring = undefined;
    }
  }

  private async restoreNow(generation: number, signal: AbortSignal): Promise<void> {
    const { sink, checkpoints, log } = this.deps;
    const started = Date.now();
    await sink.open();
    if (signal.aborted) {
      await sink.close();
      throw new SyncError('SYNC_ABORTED', 'partition given up while restoring', { retriable: false });
    }
    const committed = await this.deps.committedOffset();
    // After fencing, nothing of ours can be written any more: a marker committed now comes after
    // our last checkpoint, and seeing it means that checkpoint has been read too.
    const marker = randomUUID();
    const { checkpointTopic, checkpointKey: key, checkpointPartition: cp } = this.deps;
    await sink.commit({ also: [{ topic: checkpointTopic, messages: [restoreMarkerMessage(key, cp, marker)] }] });
    const seen = (v: Checkpoint | RestoreMarker | undefined): boolean => isRestoreMarker(v) && v.marker === marker;
    const waited = AbortSignal.timeout(RESTORE_MARKER_WAIT_MS);
    try {
      await checkpoints.waitFor(restoreMarkerKey(key), seen, AbortSignal.any([signal, waited]));
    } catch (err) {
      if (signal.aborted || !waited.aborted) throw err;
      // The table's reader is behind or stuck: the partition is handed back and restored afresh.
      throw new SyncError(
        'SYNC_KAFKA_UNAVAILABLE',
        `the checkpoint table has not read this partition's restore marker in ${RESTORE_MARKER_WAIT_MS} ms`,
        { retriable: true },
      );
    }
    const found = checkpoints.get(key);
    const checkpoint = isRestoreMarker(found) ? undefined : found;
    this.skipBelow = committed === undefined ? undefined : BigInt(committed);
    // A checkpoint for an input below the committed offset is from a finished input: ignore it.
    this.current =
      checkpoint && (committed === undefined || BigInt(checkpoint.offset) >= BigInt(committed))
        ? checkpoint
        : undefined;
    this.restoredIn = generation;
    log.info(
      {
        committedOffset: committed ?? null,
        checkpoint: this.current ? { offset: this.current.offset, produced: this.current.produced } : null,
        ms: Date.now() - started,
      },
      'partition restored',
    );
  }

  /**
   * Processes a fetched batch. Returns normally when done or when it gave the partition up
   * (revoked, stopping, fenced, Kafka gone): whatever is unresolved is fetched again and resumes
   * from the checkpoint. Throws only fatal errors.
   */
  async processBatch(messages: InputMessage[], ctx: WorkerContext): Promise<void> {
    try {
      await this.restore(ctx.generation, ctx.signal);
      let next = 0;
      while (next < messages.length && !ctx.signal.aborted) {
        const first = messages[next] as InputMessage;
        if (this.skipBelow !== undefined && BigInt(first.offset) < this.skipBelow) {
          // Finished by an earlier owner after this batch was fetched.
          ctx.resolveOffset(first.offset);
          next++;
          continue;
        }
        const wave = await this.takeWave(messages, next);
        const only = wave[0] as WaveItem<I>;
        if (wave.length === 1 && !only.small) await this.handleOne(only.message, only.input, ctx.signal);
        else await this.handleWave(wave, ctx.signal);
        next += wave.length;
        ctx.resolveOffset((wave[wave.length - 1] as WaveItem<I>).message.offset);
      }
    } catch (err) {
      const kind = errorKind(err);
      if (kind === 'fatal') throw err;
      if (kind !== 'aborted') this.invalidate();
      this.deps.log.info(
        { partition: this.partition, reason: messageOf(err), code: errorCodeOf(err) },
        'partition work handed back; it resumes from the last checkpoint',
      );
    }
  }

  /**
   * Consecutive small inputs (one user, a short list) are taken together, up to maxWave: they
   * are expanded concurrently and committed in one transaction, so a burst of API calls costs a
   * few round trips instead of a transaction each. Anything else is taken alone.
   */
  private async takeWave(messages: InputMessage[], from: number): Promise<WaveItem<I>[]> {
    const wave: WaveItem<I>[] = [];
    for (let j = from; j < messages.length && wave.length < this.deps.settings.maxWave; j++) {
      const message = messages[j] as InputMessage;
      let input: I | undefined;
      try {
        input = await this.deps.processor.decode(message);
      } catch (err) {
        // Poison input is cheap to dead-letter with its neighbours; anything else (the registry
        // unreachable) is handled alone, where it is waited out.
        if (errorKind(err) === 'bad-input') {
          wave.push({ message, input: undefined, small: true, badInput: err });
          continue;
        }
        input = undefined;
      }
      const small = input !== undefined && (this.deps.processor.isSmall?.(input) ?? false);
      if (!small) {
        if (wave.length === 0) wave.push({ message, input, small: false });
        break;
      }
      wave.push({ message, input, small: true });
    }
    return wave;
  }

  /** One input, in as many transactions as it needs; resumes from the checkpoint after failures. */
  private async handleOne(message: InputMessage, decoded: I | undefined, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    let transientFailures = 0;
    for (let attempt = 0; ; attempt++) {
      const resumed = this.current?.offset === message.offset;
      try {
        const input = decoded ?? (await this.deps.processor.decode(message));
        const records = await this.expand(message, input, signal);
        this.deps.onProcessed({ ...where(message), outcome: 'done', records, ms: Date.now() - started, resumed });
        return;
      } catch (err) {
        const kind = errorKind(err);
        await this.giveUpUncommitted(err);
        if (kind === 'fatal' || kind === 'fenced' || kind === 'aborted' || signal.aborted) throw err;
        if (kind === 'bad-input' || (kind === 'transient' && ++transientFailures > this.deps.settings.retry.retries)) {
          const input = decoded ?? (await this.deps.processor.decode(message).catch(() => undefined));
          const failed = this.statusParts(input ?? { undecoded: message }, {
            state: 'failed',
            produced: this.current?.offset === message.offset ? this.current.produced : 0,
            rowsRead: this.current?.offset === message.offset ? this.current.rowsRead : 0,
            startedAt: this.current?.startedAt ?? started,
            error: err,
            note: this.current?.note,
          });
          await this.deadLetter([message], err, failed);
          this.deps.onProcessed({
            ...where(message),
            outcome: 'dead-lettered',
            records: 0,
            code: errorCodeOf(err),
            ms: Date.now() - started,
          });
          return;
        }
        await this.wait(err, attempt, message, signal);
      }
    }
  }

  /** Runs the input's chunks into the sink, committing a checkpoint every txnMax records or ms. */
  private async expand(message: InputMessage, input: I, signal: AbortSignal): Promise<number> {
    const { processor, sink, settings } = this.deps;
    const resume = this.current?.offset === message.offset ? this.current : undefined;
    const describe = processor.describe(input);
    const log = this.deps.log.child(describe);
    const startedAt = resume?.startedAt ?? Date.now();
    let produced = resume?.produced ?? 0;
    let rowsRead = resume?.rowsRead ?? 0;
    let note: Record<string, unknown> = { ...resume?.note };
    let progress: number | undefined;
    let lastCommit = Date.now();
    if (resume) log.info({ produced, rowsRead }, 'resuming from checkpoint');
    const chunks = processor.process(input, { log, signal, message, resumeFrom: resume?.position });
    const unit = (state: PartState, checkpoint: Checkpoint | null, spawn?: OutputRecord[]): CommitOptions => ({
      checkpoint,
      also: [
        ...this.statusAlso(input, { state, produced, rowsRead, startedAt, progress, note }),
        ...(spawn && this.deps.taskTopic ? [{ topic: this.deps.taskTopic, messages: spawn as Message[] }] : []),
      ],
    });
    // Where the records added since the last commit reach: committed even when we are stopped
    // between two commits, so a deploy keeps the work done up to the last chunk.
    let reached: Checkpoint | undefined;
    try {
      for await (const chunk of chunks) {
        // A transaction stays within txnMaxRecords (unless one chunk alone is larger): the chunk
        // that would overflow it starts the next one. That bounds what a crash redoes. A client
        // that sends every record at once (librdkafka) leaves all of an open transaction on the
        // broker, not only the produce requests already sent.
        if (reached !== undefined && sink.uncommitted + chunk.records.length > settings.txnMaxRecords) {
          await sink.commit(unit('running', reached));
          this.current = reached;
          lastCommit = Date.now();
          this.deps.metrics?.transactionsCommitted.inc({ kind: 'checkpoint' });
        }
        // A chunk half handed over (the pacer was interrupted) must not be committed with the
        // position before it: its first records would be produced again on resume.
        reached = undefined;
        await this.addPaced(chunk, signal);
        produced += chunk.records.length;
        // The sink holds what it still needs; the processor's frame and this loop's would keep
        // the chunk's records alive until the next chunk comes (docs/benchmarks.md, "Flat memory,
        // fourth pass").
        chunk.records.length = 0;
        rowsRead += chunk.rowsRead;
        if (chunk.note) note = { ...note, ...chunk.note };
        if (chunk.progress !== undefined) progress = chunk.progress;
        reached = {
          offset: message.offset,
          position: chunk.position,
          produced,
          rowsRead,
          describe,
          startedAt,
          note,
          updatedAt: Date.now(),
        };
        const full = sink.uncommitted >= settings.txnMaxRecords;
        // Spawned inputs are committed with the position that says they were spawned.
        const spawns = chunk.spawn !== undefined && chunk.spawn.length > 0;
        if (spawns) this.deps.onSpawning?.();
        if (spawns || full || signal.aborted || Date.now() - (sink.openSince ?? lastCommit) >= settings.txnMaxMs) {
          await sink.commit(unit('running', reached, chunk.spawn));
          this.current = reached;
          reached = undefined;
          lastCommit = Date.now();
          this.deps.metrics?.transactionsCommitted.inc({ kind: 'checkpoint' });
          if (signal.aborted) throw new SyncError('SYNC_ABORTED', 'partition given up mid-input', { retriable: false });
        }
      }
    } catch (err) {
      if (errorKind(err) === 'aborted' && reached !== undefined) {
        const checkpoint = reached;
        await sink.commit(unit('running', checkpoint)).then(
          () => (this.current = checkpoint),
          (e: unknown) => log.warn({ err: e }, 'could not commit the last chunk while giving the partition up'),
        );
      }
      throw err;
    }
    // The last transaction deletes the checkpoint and moves the input offset past this input.
    progress = 1;
    await sink.commit({ ...unit('done', null), nextOffset: nextOffset(message) });
    this.current = undefined;
    this.deps.metrics?.transactionsCommitted.inc({ kind: 'final' });
    this.deps.metrics?.syncEventsProduced.inc(
      { source: String(describe.source ?? 'unknown') },
      produced - (resume?.produced ?? 0),
    );
    const memory = process.memoryUsage();
    log.info(
      { records: produced, rowsRead, resumed: resume !== undefined, rssMb: Math.round(memory.rss / 2 ** 20) },
      'trigger expanded',
    );
    return produced;
  }

  /** Adds a chunk's records, in slices no faster than the output rate limit allows. */
  private async addPaced(chunk: OutputChunk, signal: AbortSignal): Promise<void> {
    const { pace, sink } = this.deps;
    if (!pace) return sink.add(chunk.records);
    const slice = this.deps.settings.paceSlice ?? chunk.records.length;
    for (let i = 0; i < chunk.records.length; i += slice) {
      const part = chunk.records.slice(i, i + slice);
      await pace(part.length, signal);
      await sink.add(part);
    }
  }

  /** The status record of an input, for the unit being committed (none if it reports no status). */
  /** The status record of an input (or of a message that did not decode), for the unit being committed. */
  private statusParts(input: I | { undecoded: InputMessage }, update: StatusUpdate): Message[] {
    const { statusTopic, processor } = this.deps;
    const identity =
      'undecoded' in (input as object)
        ? processor.statusOfUndecodable?.((input as { undecoded: InputMessage }).undecoded)
        : processor.statusOf?.(input as I);
    if (!statusTopic || !identity) return [];
    const now = Date.now();
    const done = update.state !== 'running';
    const index = identity.part.startsWith('task:') ? Number(identity.part.slice(5)) : undefined;
    const part: WorkPart = {
      ...(identity.fields as Partial<WorkPart>),
      ...(update.note as Partial<WorkPart>),
      part: index === undefined ? 'trigger' : 'task',
      triggerId: identity.triggerId,
      index,
      state: update.state,
      produced: update.produced,
      rowsRead: update.rowsRead,
      progress: update.progress,
      startedAt: update.startedAt,
      updatedAt: now,
      finishedAt: done ? now : undefined,
      error:
        update.error === undefined ? undefined : { code: errorCodeOf(update.error), message: messageOf(update.error) },
    };
    return [statusMessage(statusTopic.partitions, statusKey(identity.triggerId, identity.part), part)];
  }

  private statusAlso(input: I, update: StatusUpdate): NonNullable<CommitOptions['also']> {
    return this.onStatusTopic(this.statusParts(input, update));
  }

  /** Status records as the `also` of a commit (nothing when there are none, or no status topic). */
  private onStatusTopic(messages: Message[]): NonNullable<CommitOptions['also']> {
    return messages.length > 0 && this.deps.statusTopic ? [{ topic: this.deps.statusTopic.topic, messages }] : [];
  }

  /** A wave of small inputs: expanded concurrently, committed in one transaction with the last offset. */
  private async handleWave(wave: WaveItem<I>[], signal: AbortSignal): Promise<void> {
    const started = Date.now();
    const { sink } = this.deps;
    let transientFailures = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        const outcomes = await Promise.all(wave.map((item) => this.expandSmall(item, signal)));
        let records = 0;
        const status: Message[] = [];
        for (const [i, outcome] of outcomes.entries()) {
          const { message, input } = wave[i] as WaveItem<I>;
          const n = 'records' in outcome ? outcome.records.length : 0;
          if ('records' in outcome) {
            await this.addPaced({ records: outcome.records, position: null, rowsRead: 0 }, signal);
            records += n;
          } else {
            await sink.deadLetter(this.deadLetterFor(message, outcome.failure));
          }
          const state = 'records' in outcome ? 'done' : 'failed';
          const error = 'failure' in outcome ? outcome.failure : undefined;
          const update = { state, produced: n, rowsRead: n, startedAt: started, error } as const;
          status.push(...this.statusParts(input ?? { undecoded: message }, update));
        }
        const also = this.onStatusTopic(status);
        await sink.commit({ nextOffset: nextOffset((wave[wave.length - 1] as WaveItem<I>).message), also });
        this.deps.metrics?.transactionsCommitted.inc({ kind: 'wave' });
        this.deps.metrics?.syncEventsProduced.inc({ source: 'wave' }, records);
        const ms = Date.now() - started;
        outcomes.forEach((outcome, i) => {
          const { message } = wave[i] as WaveItem<I>;
          if ('records' in outcome) {
            this.deps.onProcessed({ ...where(message), outcome: 'done', records: outcome.records.length, ms });
          } else {
            this.deps.onProcessed({
              ...where(message),
              outcome: 'dead-lettered',
              records: 0,
              code: errorCodeOf(outcome.failure),
              ms,
            });
          }
        });
        this.deps.log.debug({ triggers: wave.length, records, ms }, 'small triggers expanded');
        return;
      } catch (err) {
        const kind = errorKind(err);
        await this.giveUpUncommitted(err);
        if (kind === 'fatal' || kind === 'fenced' || kind === 'aborted' || signal.aborted) throw err;
        // A member's own failures were settled above (its dead letter); what fails here is the
        // wave's transaction, and one record the broker refuses (too large, invalid) fails it
        // every time. So after SYNC_RETRIES such tries the members go one at a time: only the one
        // whose records are refused is dead-lettered, and the partition moves on.
        if (kind !== 'outage' && ++transientFailures > this.deps.settings.retry.retries) {
          this.deps.log.warn(
            { err, triggers: wave.length, partition: this.partition },
            'small triggers keep failing together; taking them one at a time',
          );
          for (const item of wave) await this.handleOne(item.message, item.input, signal);
          return;
        }
        await this.wait(err, attempt, (wave[0] as WaveItem<I>).message, signal);
      }
    }
  }

  /** Expands one small input; its own bad input or spent transient retries become its dead letter. */
  private async expandSmall(item: WaveItem<I>, signal: AbortSignal): Promise<SmallOutcome> {
    const { processor, settings } = this.deps;
    if (item.badInput !== undefined) return { failure: item.badInput };
    for (let attempt = 0; ; attempt++) {
      try {
        const records: OutputRecord[] = [];
        const input = item.input ?? (await processor.decode(item.message));
        const log = this.deps.log.child(processor.describe(input));
        for await (const chunk of processor.process(input, { log, signal, message: item.message })) {
          for (const record of chunk.records) records.push(record);
        }
        return { records };
      } catch (err) {
        const kind = errorKind(err);
        if (kind === 'bad-input') return { failure: err };
        if (kind !== 'transient') throw err;
        if (attempt >= settings.retry.retries) return { failure: err };
        await sleep(backoffDelay(attempt, settings.retry), signal);
      }
    }
  }

  private deadLetterFor(message: InputMessage, err: unknown) {
    const record = deadLetterRecord(message, err, this.deps.processor.name, new Date());
    this.deps.log.warn(
      { code: errorCodeOf(err), reason: messageOf(err), partition: message.partition, offset: message.offset },
      'trigger sent to the dead-letter topic',
    );
    this.deps.metrics?.triggersDeadLettered.inc({ code: errorCodeOf(err) });
    return fitDeadLetter(record, this.deps.settings.maxDeadLetterBytes);
  }

  /** Dead letters and the offset past them, in one transaction; a checkpoint they had is deleted. */
  private async deadLetter(messages: InputMessage[], err: unknown, status: Message[] = []): Promise<void> {
    const { sink } = this.deps;
    for (let attempt = 0; ; attempt++) {
      try {
        for (const message of messages) await sink.deadLetter(this.deadLetterFor(message, err));
        const last = messages[messages.length - 1] as InputMessage;
        const hadCheckpoint = this.current !== undefined;
        await sink.commit({
          checkpoint: hadCheckpoint ? null : undefined,
          nextOffset: nextOffset(last),
          also: this.onStatusTopic(status),
        });
        this.current = undefined;
        return;
      } catch (e) {
        // A dead letter that cannot be written is never retried in a tight loop, and never skipped:
        // an outage waits; anything else stops the processor rather than losing the input.
        await this.giveUpUncommitted(e);
        const kind = errorKind(e);
        if (kind === 'fenced' || kind === 'aborted') throw e;
        if (kind !== 'outage') {
          throw new SyncError('SYNC_CONFIG', `cannot write to the dead-letter topic: ${messageOf(e)}`, {
            retriable: false,
            cause: e,
          });
        }
        await sleep(backoffDelay(attempt, this.deps.settings.retry));
      }
    }
  }

  /** Aborts what the sink holds; a sink that cannot abort is reopened (fenced anew) on the next batch. */
  private async giveUpUncommitted(cause: unknown): Promise<void> {
    try {
      await this.deps.sink.abort();
    } catch (err) {
      this.invalidate();
      throw errorKind(cause) === 'fatal' ? cause : err;
    }
  }

  private async wait(err: unknown, attempt: number, message: InputMessage, signal: AbortSignal): Promise<void> {
    const delayMs = backoffDelay(attempt, this.deps.settings.retry);
    this.deps.log.warn(
      {
        err,
        kind: errorKind(err),
        attempt: attempt + 1,
        delayMs,
        partition: message.partition,
        offset: message.offset,
      },
      'input failed; resuming from the last checkpoint after a pause',
    );
    await sleep(delayMs, signal);
  }
}

function where(message: InputMessage): Pick<ProcessedEvent, 'topic' | 'partition' | 'offset'> {
  return { topic: message.topic, partition: message.partition, offset: message.offset };
}

function nextOffset(message: InputMessage): string {
  return (BigInt(message.offset) + 1n).toString();
}
