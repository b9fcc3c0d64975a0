import type { Message } from 'kafkajs';
import { SyncError, type ErrorCode } from '../../../src/errors';
import { createLogger } from '../../../src/observability/logger';
import type { Checkpoint, RestoreMarker } from '../../../src/streams/checkpoints';
import type { CompactedTable } from '../../../src/streams/compacted-table';
import { PartitionWorker, type ProcessedEvent } from '../../../src/streams/partition-worker';
import type { CommitOptions, PartitionSink } from '../../../src/streams/sink';
import type {
  InputMessage,
  OutputChunk,
  OutputRecord,
  ProcessContext,
  StreamProcessor,
} from '../../../src/streams/types';

/**
 * The worker's decisions, with the sink and table in memory: what is committed together, what
 * is dead-lettered, what is retried and from where. The real transactions are exercised against
 * Kafka in test/integration and test/faults.
 */

interface Unit {
  records: string[];
  deadLetters: Message[];
  checkpoint: Checkpoint | null | undefined;
  nextOffset: string | undefined;
}

class MemorySink implements PartitionSink {
  readonly guarantee = 'exactly_once';
  units: Unit[] = [];
  aborted = 0;
  opened = 0;
  private open_: Unit = { records: [], deadLetters: [], checkpoint: undefined, nextOffset: undefined };
  private since: number | undefined;
  failNextCommit: SyncError | undefined;
  /** Refuses every commit holding one of these keys, as a broker refuses a record too large. */
  refusedKeys = new Set<string>();
  refusedCommits = 0;

  get uncommitted(): number {
    return this.open_.records.length;
  }
  get openSince(): number | undefined {
    return this.since;
  }
  async open(): Promise<void> {
    this.opened++;
  }
  async add(records: readonly OutputRecord[]): Promise<void> {
    if (records.length > 0) this.since ??= Date.now();
    this.open_.records.push(...records.map((r) => String(r.key)));
  }
  async deadLetter(record: Message): Promise<void> {
    this.open_.deadLetters.push(record);
  }
  restoreMarkers = 0;
  async commit(opts: CommitOptions): Promise<void> {
    const onlyAlso = opts.checkpoint === undefined && opts.nextOffset === undefined && this.uncommitted === 0;
    if (onlyAlso && opts.also?.some((t) => t.topic === 'checkpoints')) {
      this.restoreMarkers++;
      return;
    }
    if (this.open_.records.some((key) => this.refusedKeys.has(key))) {
      this.refusedCommits++;
      throw new SyncError('SYNC_KAFKA_REQUEST_FAILED', 'producing: MESSAGE_TOO_LARGE', { retriable: true });
    }
    if (this.failNextCommit) {
      const err = this.failNextCommit;
      this.failNextCommit = undefined;
      throw err;
    }
    this.units.push({ ...this.open_, checkpoint: opts.checkpoint, nextOffset: opts.nextOffset });
    this.open_ = { records: [], deadLetters: [], checkpoint: undefined, nextOffset: undefined };
    this.since = undefined;
  }
  async abort(): Promise<void> {
    this.aborted++;
    this.open_ = { records: [], deadLetters: [], checkpoint: undefined, nextOffset: undefined };
    this.since = undefined;
  }
  async close(): Promise<void> {}
  committedRecords(): string[] {
    return this.units.flatMap((u) => u.records);
  }
}

interface TestInput {
  users: number;
  /** Errors to throw, by code, before yielding chunk N (each entry is consumed once). */
  failAt?: Array<{ chunk: number; code: ErrorCode }>;
}

const failures = new Map<string, Array<{ chunk: number; code: ErrorCode }>>();
/** Every records array the test processor yielded, as it is now. */
const yielded: OutputRecord[][] = [];

function processor(seenResume: unknown[]): StreamProcessor<TestInput & { id: string }> {
  return {
    name: 'test',
    async decode(message: InputMessage) {
      const text = message.value?.toString() ?? '';
      if (!text.startsWith('{')) throw new SyncError('SYNC_BAD_TRIGGER', 'not JSON', { retriable: false });
      const input = JSON.parse(text) as TestInput;
      const id = `${message.partition}-${message.offset}`;
      if (input.failAt && !failures.has(id)) failures.set(id, [...input.failAt]);
      return { ...input, id };
    },
    isSmall: (input) => input.users <= 2,
    describe: (input) => ({ id: input.id }),
    async *process(input, ctx: ProcessContext): AsyncIterable<OutputChunk> {
      seenResume.push(ctx.resumeFrom);
      const from = (ctx.resumeFrom as { next: number } | undefined)?.next ?? 0;
      for (let i = from; i < input.users; i += 10) {
        const chunk = i / 10;
        const pending = failures.get(input.id) ?? [];
        const at = pending.findIndex((f) => f.chunk === chunk);
        if (at >= 0) {
          const [failure] = pending.splice(at, 1);
          throw new SyncError(failure!.code, `injected ${failure!.code}`, { retriable: true });
        }
        const n = Math.min(10, input.users - i);
        const records = Array.from({ length: n }, (_, k) => ({ key: `${input.id}:u${i + k}`, value: 'e' }));
        yielded.push(records);
        yield { records, position: { next: i + n }, rowsRead: n };
      }
    },
  };
}

function message(offset: number, value: unknown): InputMessage {
  return {
    topic: 'in',
    partition: 0,
    offset: String(offset),
    timestamp: '0',
    key: null,
    value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    headers: {},
  };
}

function setup(
  opts: {
    checkpoint?: Checkpoint;
    committed?: string;
    retries?: number;
    pace?: (n: number, signal: AbortSignal) => Promise<void>;
    paceSlice?: number;
    txnMaxRecords?: number;
  } = {},
) {
  const sink = new MemorySink();
  const resumes: unknown[] = [];
  const processed: ProcessedEvent[] = [];
  const resolved: string[] = [];
  const table = {
    caughtUp: async () => undefined,
    waitFor: async () => undefined,
    get: () => opts.checkpoint,
  } as unknown as CompactedTable<Checkpoint | RestoreMarker>;
  const worker = new PartitionWorker(0, {
    processor: processor(resumes),
    sink,
    checkpoints: table,
    checkpointKey: 'k',
    checkpointPartition: 0,
    checkpointTopic: 'checkpoints',
    committedOffset: async () => opts.committed,
    settings: {
      retry: { retries: opts.retries ?? 2, initialDelayMs: 1, maxDelayMs: 2 },
      txnMaxRecords: opts.txnMaxRecords ?? 30,
      txnMaxMs: 60000,
      maxWave: 64,
      maxDeadLetterBytes: 100000,
      paceSlice: opts.paceSlice,
    },
    pace: opts.pace,
    log: createLogger('silent'),
    onProcessed: (e) => processed.push(e),
  });
  const run = (messages: InputMessage[], signal = new AbortController().signal) =>
    worker.processBatch(messages, { generation: 1, signal, resolveOffset: (o) => resolved.push(o) });
  return { sink, resumes, processed, resolved, worker, run };
}

const users = (id: string, n: number) => Array.from({ length: n }, (_, i) => `${id}:u${i}`);

beforeEach(() => {
  failures.clear();
  yielded.length = 0;
});

describe('partition worker', () => {
  test('a chunk’s records array is emptied once the sink has them, so a suspended processor does not keep them alive', async () => {
    const { sink, run } = setup();
    await run([message(5, { users: 95 })]);
    expect(sink.committedRecords()).toEqual(users('0-5', 95));
    expect(yielded).toHaveLength(10);
    expect(yielded.every((records) => records.length === 0)).toBe(true);
  });

  test('a large input: a checkpoint every txnMaxRecords, the last transaction deletes it and carries the offset', async () => {
    const { sink, resolved, processed, run } = setup();
    await run([message(5, { users: 95 })]);
    expect(sink.committedRecords()).toEqual(users('0-5', 95));
    const checkpoints = sink.units.map((u) => u.checkpoint);
    expect(checkpoints.slice(0, -1).map((c) => (c as Checkpoint).produced)).toEqual([30, 60, 90]);
    expect(checkpoints.slice(0, -1).every((c) => (c as Checkpoint).offset === '5')).toBe(true);
    expect(sink.units[sink.units.length - 1]).toMatchObject({ checkpoint: null, nextOffset: '6' });
    expect(sink.units.slice(0, -1).every((u) => u.nextOffset === undefined)).toBe(true);
    expect(resolved).toEqual(['5']);
    expect(processed).toEqual([expect.objectContaining({ outcome: 'done', records: 95, resumed: false })]);
  });

  test('a transaction never grows past txnMaxRecords: the chunk that would overflow it starts the next one', async () => {
    // Chunks of 10 against a limit of 25: 10 + 10, then the third chunk opens a new transaction.
    const { sink, run } = setup({ txnMaxRecords: 25 });
    await run([message(5, { users: 95 })]);
    expect(sink.committedRecords()).toEqual(users('0-5', 95));
    expect(sink.units.map((u) => u.records.length)).toEqual([20, 20, 20, 20, 15]);
    expect(sink.units.slice(0, -1).map((u) => (u.checkpoint as Checkpoint).produced)).toEqual([20, 40, 60, 80]);
  });

  test('a restored checkpoint for the same offset resumes there; its count carries on', async () => {
    const checkpoint: Checkpoint = { offset: '5', position: { next: 60 }, produced: 60, rowsRead: 60, updatedAt: 0 };
    const { sink, resumes, processed, run } = setup({ checkpoint, committed: '5' });
    await run([message(5, { users: 95 })]);
    expect(resumes).toEqual([{ next: 60 }]);
    expect(sink.committedRecords()).toEqual(users('0-5', 95).slice(60));
    expect(processed[0]).toMatchObject({ records: 95, resumed: true });
  });

  test('a checkpoint of an input already finished (below the committed offset) is ignored, and so are messages below it', async () => {
    const checkpoint: Checkpoint = { offset: '3', position: { next: 60 }, produced: 60, rowsRead: 60, updatedAt: 0 };
    const { sink, resumes, resolved, run } = setup({ checkpoint, committed: '5' });
    await run([message(3, { users: 95 }), message(4, { users: 5 }), message(5, { users: 20 })]);
    expect(resumes).toEqual([undefined]);
    expect(sink.committedRecords()).toEqual(users('0-5', 20));
    expect(resolved).toEqual(['3', '4', '5']);
  });

  test('a transient failure is retried from the last committed checkpoint: nothing committed twice, nothing lost', async () => {
    const { sink, resumes, processed, run } = setup();
    await run([
      message(0, {
        users: 95,
        failAt: [
          { chunk: 4, code: 'SYNC_CASSANDRA_REQUEST_FAILED' },
          { chunk: 7, code: 'SYNC_CASSANDRA_REQUEST_FAILED' },
        ],
      }),
    ]);
    expect(sink.committedRecords()).toEqual(users('0-0', 95));
    // Resumed twice, each time from the checkpoint committed before the failure.
    expect(resumes).toEqual([undefined, { next: 30 }, { next: 60 }]);
    expect(sink.aborted).toBe(2);
    expect(processed).toEqual([expect.objectContaining({ outcome: 'done' })]);
  });

  test('a transient failure that keeps failing is dead-lettered after SYNC_RETRIES more tries, with its checkpoint deleted', async () => {
    const failAt = Array.from({ length: 10 }, () => ({ chunk: 4, code: 'SYNC_CASSANDRA_REQUEST_FAILED' as ErrorCode }));
    const { sink, resumes, processed, resolved, run } = setup({ retries: 2 });
    await run([message(0, { users: 95, failAt }), message(1, { users: 15 })]);
    expect(resumes).toHaveLength(1 + 2 + 1);
    const dead = sink.units.find((u) => u.deadLetters.length > 0);
    expect(dead).toMatchObject({ checkpoint: null, nextOffset: '1' });
    expect(dead?.deadLetters[0]?.headers?.['dlq.error.code']).toBe('SYNC_CASSANDRA_REQUEST_FAILED');
    expect(processed.map((p) => p.outcome)).toEqual(['dead-lettered', 'done']);
    expect(resolved).toEqual(['0', '1']);
  });

  test('an outage is waited out however long it lasts (more tries than SYNC_RETRIES), never dead-lettered', async () => {
    const failAt = Array.from({ length: 8 }, () => ({ chunk: 2, code: 'SYNC_CASSANDRA_UNAVAILABLE' as ErrorCode }));
    const { sink, processed, run } = setup({ retries: 1 });
    await run([message(0, { users: 45, failAt })]);
    expect(sink.committedRecords()).toEqual(users('0-0', 45));
    expect(sink.units.every((u) => u.deadLetters.length === 0)).toBe(true);
    expect(processed).toEqual([expect.objectContaining({ outcome: 'done' })]);
  });

  test('bad input is dead-lettered at once; the partition goes on', async () => {
    const { sink, processed, run } = setup();
    await run([message(0, 'garbage'), message(1, { users: 15 })]);
    expect(sink.units[0]?.deadLetters).toHaveLength(1);
    expect(sink.units[0]?.nextOffset).toBe('1');
    expect(processed.map((p) => p.outcome)).toEqual(['dead-lettered', 'done']);
  });

  test('a fatal error stops the partition and is thrown to the runtime; nothing is dead-lettered', async () => {
    const { sink, run } = setup();
    await expect(run([message(0, { users: 45, failAt: [{ chunk: 1, code: 'SYNC_CONFIG' }] })])).rejects.toMatchObject({
      code: 'SYNC_CONFIG',
    });
    expect(sink.units.every((u) => u.deadLetters.length === 0 && u.nextOffset === undefined)).toBe(true);
  });

  test('a fenced producer gives the partition up unresolved, and the next batch restores first', async () => {
    const { sink, resolved, worker, run } = setup();
    sink.failNextCommit = new SyncError('SYNC_FENCED', 'fenced', { retriable: false });
    await run([message(0, { users: 45 })]);
    expect(resolved).toEqual([]);
    expect(sink.opened).toBe(1);
    expect(sink.restoreMarkers).toBe(1);
    await worker.processBatch([message(0, { users: 5 })], {
      generation: 1,
      signal: new AbortController().signal,
      resolveOffset: () => undefined,
    });
    expect(sink.opened).toBe(2);
    expect(sink.restoreMarkers).toBe(2);
  });

  test('prepare restores ahead of the first batch: the batch waits for that restore and does not restore again', async () => {
    const { sink, worker, run, processed } = setup();
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const open = sink.open.bind(sink);
    sink.open = async () => {
      await held;
      await open();
    };
    worker.prepare(1, new AbortController().signal);
    worker.prepare(1, new AbortController().signal);
    const batch = run([message(0, { users: 5 })]);
    await new Promise((r) => setTimeout(r, 20));
    // The batch is waiting on the restore under way, not running beside it.
    expect(processed).toEqual([]);
    release();
    await batch;
    expect(sink.opened).toBe(1);
    expect(sink.restoreMarkers).toBe(1);
    expect(sink.committedRecords()).toEqual(users('0-0', 5));
  });

  test('a restore ahead of time stops when the partition goes elsewhere: no marker is committed and the producer it opened is closed', async () => {
    const { sink, worker } = setup();
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const open = sink.open.bind(sink);
    let closes = 0;
    sink.open = async () => {
      await held;
      await open();
    };
    sink.close = async () => {
      closes++;
    };
    const prepared = new Promise<void>((resolve) => {
      const commit = sink.commit.bind(sink);
      sink.commit = async (opts) => {
        resolve();
        return commit(opts);
      };
      setTimeout(resolve, 200);
    });
    worker.prepare(1, new AbortController().signal);
    // The rebalance that moved the partition away closes its worker while the fencing is under way.
    await worker.close();
    const closedByRebalance = closes;
    release();
    await prepared;
    expect(sink.opened).toBe(1);
    expect(sink.restoreMarkers).toBe(0);
    expect(closes).toBe(closedByRebalance + 1);
  });

  test('a restore ahead of time that failed is done again by the first batch', async () => {
    const { sink, worker, run, resolved } = setup();
    const open = sink.open.bind(sink);
    let failures = 1;
    sink.open = async () => {
      await open();
      if (failures-- > 0) throw new SyncError('SYNC_KAFKA_UNAVAILABLE', 'broker gone', { retriable: true });
    };
    worker.prepare(1, new AbortController().signal);
    await run([message(0, { users: 5 })]);
    expect(sink.opened).toBe(2);
    expect(sink.restoreMarkers).toBe(1);
    expect(resolved).toEqual(['0']);
  });

  test('stopping mid-input commits what was reached and leaves the input unresolved for the next owner', async () => {
    const { sink, resolved, run } = setup();
    const controller = new AbortController();
    const originalAdd = sink.add.bind(sink);
    sink.add = async (records) => {
      await originalAdd(records);
      if (sink.committedRecords().length + sink.uncommitted >= 40) controller.abort();
    };
    await run([message(0, { users: 95 })], controller.signal);
    expect(resolved).toEqual([]);
    const last = sink.units[sink.units.length - 1];
    expect(last?.checkpoint).toMatchObject({ offset: '0', produced: 40, position: { next: 40 } });
    expect(last?.nextOffset).toBeUndefined();
    expect(sink.committedRecords()).toEqual(users('0-0', 40));
  });

  test('a wave of small inputs is one commit with the last offset; its bad members are dead-lettered inside it', async () => {
    const { sink, processed, resolved, run } = setup();
    await run([
      message(0, { users: 1 }),
      message(1, 'garbage'),
      message(2, { users: 2 }),
      message(3, { users: 1, failAt: [{ chunk: 0, code: 'SYNC_INVALID_EVENT' }] }),
      message(4, 'more garbage'),
      message(5, { users: 1 }),
    ]);
    expect(sink.units).toHaveLength(1);
    expect(sink.units[0]).toMatchObject({ nextOffset: '6', checkpoint: undefined });
    expect(sink.units[0]?.records).toEqual(['0-0:u0', '0-2:u0', '0-2:u1', '0-5:u0']);
    expect(sink.units[0]?.deadLetters.map((d) => d.headers?.['dlq.source.offset'])).toEqual(['1', '3', '4']);
    expect(processed.map((p) => p.outcome)).toEqual([
      'done',
      'dead-lettered',
      'done',
      'dead-lettered',
      'dead-lettered',
      'done',
    ]);
    expect(resolved).toEqual(['5']);
  });

  test('a wave whose transaction the broker keeps refusing splits after SYNC_RETRIES tries: only the member with the refused record is dead-lettered', async () => {
    const { sink, processed, resolved, run } = setup({ retries: 2 });
    sink.refusedKeys.add('0-1:u0');
    await run([message(0, { users: 1 }), message(1, { users: 2 }), message(2, { users: 1 })]);
    // The wave was tried 1 + 2 times, then member 1 alone 1 + 2 times before its dead letter.
    expect(sink.refusedCommits).toBe(6);
    expect(sink.committedRecords()).toEqual(['0-0:u0', '0-2:u0']);
    const dead = sink.units.filter((u) => u.deadLetters.length > 0);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ nextOffset: '2', records: [] });
    expect(dead[0]?.deadLetters[0]?.headers?.['dlq.error.code']).toBe('SYNC_KAFKA_REQUEST_FAILED');
    expect(sink.units.map((u) => u.nextOffset)).toEqual(['1', '2', '3']);
    expect(processed.map((p) => p.outcome)).toEqual(['done', 'dead-lettered', 'done']);
    expect(resolved).toEqual(['2']);
  });

  test('a wave whose commit meets an outage waits it out as one wave, never split or dead-lettered', async () => {
    const { sink, processed, run } = setup({ retries: 1 });
    let outages = 5;
    const commit = sink.commit.bind(sink);
    sink.commit = async (opts) => {
      if (opts.nextOffset !== undefined && outages-- > 0) {
        throw new SyncError('SYNC_KAFKA_UNAVAILABLE', 'brokers unreachable', { retriable: true });
      }
      return commit(opts);
    };
    await run([message(0, { users: 1 }), message(1, { users: 2 })]);
    expect(sink.units).toHaveLength(1);
    expect(sink.units[0]).toMatchObject({ nextOffset: '2', records: ['0-0:u0', '0-1:u0', '0-1:u1'] });
    expect(processed.map((p) => p.outcome)).toEqual(['done', 'done']);
  });
});

test('stopped while the pacer holds a chunk half handed over: nothing of that transaction is committed, so nothing is produced twice', async () => {
  const controller = new AbortController();
  let slices = 0;
  const pace = async (_n: number, signal: AbortSignal) => {
    slices++;
    // Chunks of 10 in slices of 5: stop at the 4th slice, half way through the 2nd chunk (the
    // first chunk is handed over but not yet committed).
    if (slices === 4) controller.abort();
    if (signal.aborted) throw new SyncError('SYNC_ABORTED', 'stopping', { retriable: false });
  };
  const { sink, resolved, run } = setup({ pace, paceSlice: 5 });
  await run([message(0, { users: 95 })], controller.signal);
  expect(resolved).toEqual([]);
  expect(sink.committedRecords()).toEqual([]);
  expect(sink.aborted).toBeGreaterThan(0);
});
