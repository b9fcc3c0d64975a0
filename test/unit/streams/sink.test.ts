import {
  buildSyncEvent,
  syncEventJson,
  syncEventUuid,
  writeSyncEventsJson,
} from '../../../processors/enrolment-sync/sync-event';
import type {
  IdempotentProducer,
  ProducerClient,
  ProducerRecord,
  TopicRecords,
  TransactionalProducer,
} from '../../../src/kafka/ports';
import { errorKind, SyncError } from '../../../src/errors';
import { recordBuffers } from '../../../src/streams/record-buffers';
import { AtLeastOnceSink, TransactionalSink, type SinkSettings } from '../../../src/streams/sink';

/**
 * The sinks give the event buffers back to the pool (src/streams/record-buffers.ts) only when the
 * client is done with the records. The producer here behaves as kafkajs does: a send keeps its
 * records until it resolves and reads them again on a retry (it re-encodes from them), and its
 * at-least-once enqueue is a send that resolves late. Meanwhile the processor writes more events,
 * from the same pool: a buffer handed out too early is overwritten, and the retry reads it.
 */

const requestedAt = 1700000000000;
const trigger = (triggerId: string) => ({ triggerId, courseId: 'c', batchId: 'b', requestedAt });
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const expected = (triggerId: string, userId: string) =>
  syncEventJson(buildSyncEvent('c', 'b', userId, requestedAt, syncEventUuid(triggerId, userId)));

/** A send that is held until the test lets it go; its records' bytes, read as a retry would read them. */
interface HeldSend {
  messages: readonly ProducerRecord[];
  reread(): string[];
  resolve(): void;
}

class HoldingClient implements ProducerClient {
  readonly name = 'kafkajs';
  held: HeldSend[] = [];

  private hold(batches: readonly TopicRecords[]): Promise<void> {
    return new Promise((resolve) => {
      for (const { messages } of batches) {
        this.held.push({
          messages,
          reread: () => messages.map((m) => String(m.value)),
          resolve,
        });
      }
    });
  }

  opened = 0;
  closed = 0;

  releaseAll(): void {
    for (const send of this.held.splice(0)) send.resolve();
  }

  transactionalProducer(): TransactionalProducer {
    let active = false;
    return {
      open: async () => {
        this.opened++;
      },
      begin: async () => {
        active = true;
      },
      get inTransaction() {
        return active;
      },
      send: (batches) => this.hold(batches),
      flush: async () => undefined,
      sendOffsets: async () => undefined,
      commit: async () => {
        active = false;
      },
      abort: async () => {
        active = false;
      },
      close: async () => {
        this.closed++;
      },
    };
  }

  idempotentProducer(): IdempotentProducer {
    let queued: Promise<void>[] = [];
    return {
      open: async () => undefined,
      send: (batches) => this.hold(batches),
      // Accepted at once, read when flushed, as a client that buffers does.
      enqueue: async (batches) => {
        queued.push(this.hold(batches));
      },
      flush: async () => {
        const waiting = queued;
        queued = [];
        await Promise.all(waiting);
      },
      close: async () => undefined,
    };
  }

  async close(): Promise<void> {}
}

const settings: SinkSettings = {
  groupId: 'g',
  inputTopic: 'in',
  partition: 0,
  outputTopic: 'out',
  deadLetterTopic: 'dlq',
  checkpointTopic: 'cp',
  checkpointKey: 'k',
  checkpointPartition: 0,
  batchSize: 1000,
  maxInFlight: 4,
  transactionTimeoutMs: 60000,
  producerUnansweredMs: 90000,
};

/** Every record the client holds still reads as the event it was written as. */
function expectIntact(client: HoldingClient, triggerId: string, prefix: string): number {
  let checked = 0;
  for (const send of client.held) {
    const bytes = send.reread();
    for (const [i, m] of send.messages.entries()) {
      if (!String(m.key).startsWith(`${prefix}-`)) continue;
      expect(bytes[i]).toBe(expected(triggerId, String(m.key)));
      checked++;
    }
  }
  return checked;
}

describe('sinks and the event buffers', () => {
  // Every test starts with no free buffer, so a reuse is one its own sink allowed.
  beforeEach(() => {
    while (recordBuffers.stats().free > 0) recordBuffers.take();
  });

  test('exactly once: a send’s buffers are not reused before it resolves, and are after', async () => {
    const client = new HoldingClient();
    const sink = new TransactionalSink(client, settings);
    await sink.open();
    // 2,500 events: two full sends in flight, 500 pending for the next.
    await sink.add(writeSyncEventsJson(trigger('t1'), ids('a', 2500)));
    expect(client.held).toHaveLength(2);

    // More events written while those sends are held: had their buffers been given back, these
    // would overwrite them.
    const before = recordBuffers.stats();
    const more = writeSyncEventsJson(trigger('t2'), ids('b', 2500));
    expect(recordBuffers.stats().reused).toBe(before.reused);
    expect(expectIntact(client, 't1', 'a')).toBe(2000);

    // The sends resolve: their buffers (not the one the 500 pending records are in) go back.
    client.releaseAll();
    await new Promise((resolve) => setImmediate(resolve));
    const after = writeSyncEventsJson(trigger('t3'), ids('c', 2500));
    expect(recordBuffers.stats().reused).toBeGreaterThan(before.reused);
    // The commit sends the 500 pending with the checkpoint; they are intact though buffers were reused.
    const committing = sink.commit({ checkpoint: null, nextOffset: '1' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(expectIntact(client, 't1', 'a')).toBe(500);
    client.releaseAll();
    await committing;
    for (const [i, r] of more.entries()) expect(r.value.toString()).toBe(expected('t2', `b-${i}`));
    for (const [i, r] of after.entries()) expect(r.value.toString()).toBe(expected('t3', `c-${i}`));
    await sink.close();
  });

  test('at least once: enqueued records keep their buffers until the flush has acknowledged them', async () => {
    const client = new HoldingClient();
    const sink = new AtLeastOnceSink(client, settings, async () => undefined);
    await sink.open();
    await sink.add(writeSyncEventsJson(trigger('t4'), ids('d', 3000)));
    const before = recordBuffers.stats();
    writeSyncEventsJson(trigger('t5'), ids('e', 3000));
    expect(recordBuffers.stats().reused).toBe(before.reused);
    expect(expectIntact(client, 't4', 'd')).toBe(3000);

    const committing = sink.commit({ checkpoint: null, nextOffset: '1' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(expectIntact(client, 't4', 'd')).toBe(3000);
    client.releaseAll();
    // The checkpoint's send after the flush.
    await new Promise((resolve) => setImmediate(resolve));
    client.releaseAll();
    await committing;
    writeSyncEventsJson(trigger('t6'), ids('f', 3000));
    expect(recordBuffers.stats().reused).toBeGreaterThan(before.reused);
  });

  test('at least once: records enqueued in an aborted unit keep their buffers (the client may still hold them)', async () => {
    const client = new HoldingClient();
    const sink = new AtLeastOnceSink(client, settings, async () => undefined);
    await sink.open();
    await sink.add(writeSyncEventsJson(trigger('t7'), ids('g', 2000)));
    await sink.abort();
    const before = recordBuffers.stats();
    writeSyncEventsJson(trigger('t8'), ids('h', 3000));
    expect(recordBuffers.stats().reused).toBe(before.reused);
    expect(expectIntact(client, 't7', 'g')).toBe(2000);
    client.releaseAll();
  });
});

describe('a transactional producer that stops answering', () => {
  test('is given up as fenced after producerUnansweredMs, and the sink opens a new one', async () => {
    const client = new HoldingClient();
    const sink = new TransactionalSink(client, { ...settings, producerUnansweredMs: 50 });
    await sink.open();
    // A send the client never answers, as a library that lost its callback.
    await sink.add(writeSyncEventsJson(trigger('t9'), ids('i', 1000)));
    const started = Date.now();
    const failed = await sink.commit({ checkpoint: null, nextOffset: '1' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(SyncError);
    expect(errorKind(failed)).toBe('fenced');
    expect((failed as Error).message).toMatch(/no answer in 50 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(client.closed).toBe(1);
    // What the worker does next: abort (nothing hangs on the unanswered send), then restore.
    await sink.abort();
    await sink.open();
    expect(client.opened).toBe(2);
    client.releaseAll();
    await sink.close();
  });
});
