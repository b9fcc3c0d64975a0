import type { SyncTrigger } from '../../../processors/enrolment-sync/trigger';
import type { TransactionalProducer } from '../../../src/kafka/ports';
import { createTriggerPublisher, type SendOutcome } from '../../../src/kafka/trigger-publisher';

/**
 * The publisher's bookkeeping when a caller gives up, against a scripted stand-in for a
 * transactional producer (the integration test test/secure/kafka-paused.test.ts does the same
 * against a real, paused broker). Each step of a transaction waits until the test releases it.
 */
interface Step {
  kind: 'send' | 'commit' | 'abort';
  keys: string[];
  release(): void;
  /** Makes the step fail as the broker would, with a kafkajs-shaped error of this type. */
  fail(type: string): void;
}

function scriptedProducer() {
  const steps: Step[] = [];
  const committed: string[] = [];
  const aborted: string[] = [];
  const waitFor = (kind: Step['kind'], keys: string[]) =>
    new Promise<void>((resolve, reject) =>
      steps.push({
        kind,
        keys,
        release: resolve,
        fail: (type) => reject(Object.assign(new Error(`broker says ${type}`), { type })),
      }),
    );
  let keys: string[] = [];
  let open = false;
  const producer: TransactionalProducer = {
    open: async () => undefined,
    get inTransaction() {
      return open;
    },
    begin: async () => {
      open = true;
      keys = [];
    },
    send: async (batches) => {
      keys = batches.flatMap((b) => b.messages.map((m) => String(m.key)));
      await waitFor('send', keys);
    },
    flush: async () => undefined,
    sendOffsets: async () => undefined,
    commit: async () => {
      await waitFor('commit', keys);
      committed.push(...keys);
      open = false;
    },
    abort: async () => {
      open = false;
      await waitFor('abort', keys);
      aborted.push(...keys);
    },
    close: async () => undefined,
  };
  const next = async (kind: Step['kind']): Promise<Step> => {
    for (let i = 0; i < 200; i++) {
      const at = steps.findIndex((s) => s.kind === kind);
      if (at >= 0) return steps.splice(at, 1)[0] as Step;
      await new Promise((resolve) => setImmediate(resolve));
    }
    throw new Error(`no ${kind} step came`);
  };
  return { producer, next, committed, aborted };
}

const trigger = (id: string, users = 1): SyncTrigger => ({
  triggerId: id,
  courseId: 'c',
  batchId: 'b',
  userIds: Array.from({ length: users }, (_, i) => `user-${i}`),
  requestedBy: 'test',
  requestedAt: 0,
  source: 'api',
  includeInactive: null,
  includeCompleted: null,
});

const settled = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err: { code?: string }) => err.code ?? 'error',
  );

describe('transactional trigger publisher: giving up', () => {
  test('given up while being sent: answered at once, its transaction aborted, the others sent again', async () => {
    const { producer, next, committed, aborted } = scriptedProducer();
    const publish = createTriggerPublisher([producer], 't');
    const giveUp = new AbortController();
    const first = settled(publish(trigger('a'), { signal: giveUp.signal }));
    const sendA = await next('send');
    // b and c queue behind a's transaction (one producer, one transaction at a time).
    const b = settled(publish(trigger('b')));
    const c = settled(publish(trigger('c')));
    giveUp.abort();
    expect(await first).toBe('SYNC_TIMEOUT');
    sendA.release();
    (await next('abort')).release();
    const sendBc = await next('send');
    expect(sendBc.keys).toEqual(['b', 'c']);
    sendBc.release();
    (await next('commit')).release();
    expect([await b, await c]).toEqual(['ok', 'ok']);
    expect(aborted).toEqual(['a']);
    expect(committed).toEqual(['b', 'c']);
  });

  test('given up while queued: withdrawn, never sent', async () => {
    const { producer, next, committed } = scriptedProducer();
    const publish = createTriggerPublisher([producer], 't');
    const first = settled(publish(trigger('a')));
    const sendA = await next('send');
    const giveUp = new AbortController();
    const queued = settled(publish(trigger('q'), { signal: giveUp.signal }));
    giveUp.abort();
    expect(await queued).toBe('SYNC_TIMEOUT');
    sendA.release();
    (await next('commit')).release();
    expect(await first).toBe('ok');
    await new Promise((resolve) => setImmediate(resolve));
    expect(committed).toEqual(['a']);
    await expect(next('send')).rejects.toThrow(/no send step/);
  });

  test('given up while its commit is under way: the commit decides, and the caller hears its outcome', async () => {
    const { producer, next, committed } = scriptedProducer();
    const publish = createTriggerPublisher([producer], 't');
    const giveUp = new AbortController();
    const result = settled(publish(trigger('a'), { signal: giveUp.signal }));
    (await next('send')).release();
    const commit = await next('commit');
    giveUp.abort();
    commit.release();
    expect(await result).toBe('ok');
    expect(committed).toEqual(['a']);
  });

  test('given up while a buffering client waits for the acknowledgement: answered at once, the transaction aborted, not committed', async () => {
    const { producer, next, committed, aborted } = scriptedProducer();
    // librdkafka's send only queues the records; flush() is where the broker's answer is awaited.
    let acknowledge!: () => void;
    producer.flush = () => new Promise<void>((resolve) => (acknowledge = resolve));
    const publish = createTriggerPublisher([producer], 't');
    const giveUp = new AbortController();
    const result = settled(publish(trigger('a'), { signal: giveUp.signal }));
    (await next('send')).release();
    await new Promise((resolve) => setImmediate(resolve));
    giveUp.abort();
    expect(await result).toBe('SYNC_TIMEOUT');
    acknowledge();
    (await next('abort')).release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(aborted).toEqual(['a']);
    expect(committed).toEqual([]);
    await expect(next('commit')).rejects.toThrow(/no commit step/);
  });

  test('a full queue refuses at once with SYNC_OVERLOADED', async () => {
    const { producer, next } = scriptedProducer();
    const publish = createTriggerPublisher([producer], 't', { maxQueued: 1 });
    const first = settled(publish(trigger('a')));
    const sendA = await next('send');
    const second = settled(publish(trigger('b')));
    expect(await settled(publish(trigger('c')))).toBe('SYNC_OVERLOADED');
    sendA.release();
    (await next('commit')).release();
    (await next('send')).release();
    (await next('commit')).release();
    expect([await first, await second]).toEqual(['ok', 'ok']);
  });
});

describe('transactional trigger publisher: group commit', () => {
  test('triggers within the linger share one transaction, and onSend counts them', async () => {
    const { producer, next, committed } = scriptedProducer();
    const sends: SendOutcome[] = [];
    const publish = createTriggerPublisher([producer], 't', {
      lingerMs: 40,
      onSend: (s) => sends.push(s),
    });
    const results = ['a', 'b', 'c'].map((id) => settled(publish(trigger(id))));
    await new Promise((resolve) => setTimeout(resolve, 10));
    const d = settled(publish(trigger('d')));
    const send = await waitForStep(next, 'send');
    expect(send.keys).toEqual(['a', 'b', 'c', 'd']);
    send.release();
    (await next('commit')).release();
    expect(await Promise.all([...results, d])).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(committed).toEqual(['a', 'b', 'c', 'd']);
    expect(sends).toEqual([{ triggers: 4, outcome: 'committed', seconds: expect.any(Number) }]);
  });

  test('without a linger, the first trigger goes at once and the rest share the next transaction', async () => {
    const { producer, next } = scriptedProducer();
    const publish = createTriggerPublisher([producer], 't');
    const a = settled(publish(trigger('a')));
    const sendA = await next('send');
    expect(sendA.keys).toEqual(['a']);
    const rest = ['b', 'c', 'd'].map((id) => settled(publish(trigger(id))));
    sendA.release();
    (await next('commit')).release();
    const sendRest = await next('send');
    expect(sendRest.keys).toEqual(['b', 'c', 'd']);
    sendRest.release();
    (await next('commit')).release();
    expect(await Promise.all([a, ...rest])).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  test('a full batch goes at once, without waiting out the linger', async () => {
    const { producer, next } = scriptedProducer();
    const publish = createTriggerPublisher([producer], 't', { lingerMs: 60_000, maxBatch: 2 });
    const first = ['a', 'b', 'c'].map((id) => settled(publish(trigger(id))));
    const send = await next('send');
    expect(send.keys).toEqual(['a', 'b']);
    send.release();
    (await next('commit')).release();
    expect(await Promise.all(first.slice(0, 2))).toEqual(['ok', 'ok']);
  });

  test('sends are bounded in bytes: big triggers split over transactions, one too big goes alone', async () => {
    const { producer, next, committed } = scriptedProducer();
    const size = Buffer.byteLength(JSON.stringify(trigger('x', 100)));
    const publish = createTriggerPublisher([producer], 't', {
      lingerMs: 60_000,
      maxBatchBytes: size * 2,
    });
    const results = [
      settled(publish(trigger('big', 1000))),
      ...['a', 'b', 'c', 'd'].map((id) => settled(publish(trigger(id, 100)))),
    ];
    const keysOfSends: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const send = await next('send');
      keysOfSends.push(send.keys);
      send.release();
      (await next('commit')).release();
    }
    // Each send was full in bytes, so none waited for the (one-minute) linger.
    expect(keysOfSends).toEqual([['big'], ['a', 'b'], ['c', 'd']]);
    expect(await Promise.all(results)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(committed).toEqual(['big', 'a', 'b', 'c', 'd']);
  });

  test('a shared send that fails fails every trigger in it, aborts its transaction, and commits nothing', async () => {
    const { producer, next, committed, aborted } = scriptedProducer();
    const sends: SendOutcome[] = [];
    const publish = createTriggerPublisher([producer], 't', {
      lingerMs: 20,
      onSend: (s) => sends.push(s),
    });
    const results = ['a', 'b', 'c'].map((id) => publish(trigger(id)).catch((err: unknown) => err));
    const send = await waitForStep(next, 'send');
    expect(send.keys).toEqual(['a', 'b', 'c']);
    send.fail('MESSAGE_TOO_LARGE');
    (await next('abort')).release();
    for (const err of await Promise.all(results)) {
      expect(err).toMatchObject({ code: 'SYNC_KAFKA_REQUEST_FAILED', retriable: true });
    }
    expect(committed).toEqual([]);
    expect(aborted).toEqual(['a', 'b', 'c']);
    expect(sends).toEqual([{ triggers: 3, outcome: 'failed', seconds: expect.any(Number) }]);
  });

  test('a commit that fails fails every trigger of the transaction, and the transaction is aborted', async () => {
    const { producer, next, committed, aborted } = scriptedProducer();
    const publish = createTriggerPublisher([producer], 't', { lingerMs: 20 });
    const results = ['a', 'b'].map((id) => publish(trigger(id)).catch((err: unknown) => err));
    (await waitForStep(next, 'send')).release();
    (await next('commit')).fail('COORDINATOR_NOT_AVAILABLE');
    // Left open, the producer could never begin its next transaction.
    (await next('abort')).release();
    for (const err of await Promise.all(results)) expect(err).toMatchObject({ retriable: true });
    expect(committed).toEqual([]);
    expect(aborted).toEqual(['a', 'b']);
    expect(producer.inTransaction).toBe(false);
  });
});

describe('transactional trigger publisher: a producer whose send failed', () => {
  test('is renewed before its next send; one whose send was given up on is not', async () => {
    const broken = scriptedProducer();
    const fresh = scriptedProducer();
    const renewed: TransactionalProducer[] = [];
    const publish = createTriggerPublisher([broken.producer], 't', {
      renew: async (p) => {
        renewed.push(p);
        return fresh.producer;
      },
    });
    const failed = settled(publish(trigger('a')));
    (await broken.next('send')).fail('MESSAGE_TOO_LARGE');
    (await broken.next('abort')).release();
    expect(await failed).toBe('SYNC_KAFKA_REQUEST_FAILED');
    expect(renewed).toEqual([broken.producer]);

    const ok = settled(publish(trigger('b')));
    (await fresh.next('send')).release();
    (await fresh.next('commit')).release();
    expect(await ok).toBe('ok');
    expect(fresh.committed).toEqual(['b']);
    await expect(broken.next('send')).rejects.toThrow(/no send step/);

    // Given up on: aborted on purpose, nothing wrong with the producer.
    const giveUp = new AbortController();
    const gaveUp = settled(publish(trigger('c'), { signal: giveUp.signal }));
    const send = await fresh.next('send');
    giveUp.abort();
    send.release();
    (await fresh.next('abort')).release();
    expect(await gaveUp).toBe('SYNC_TIMEOUT');
    expect(renewed).toHaveLength(1);
  });
});

/** Like `next`, for a step that comes after a timer (the linger), not within a few ticks. */
async function waitForStep(
  next: (kind: Step['kind']) => Promise<Step>,
  kind: Step['kind'],
  timeoutMs = 2000,
): Promise<Step> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await next(kind);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
