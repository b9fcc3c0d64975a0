import type { Producer } from 'kafkajs';
import type { SyncTrigger } from '../../../processors/enrolment-sync/trigger';
import { createTriggerPublisher } from '../../../src/kafka/trigger-publisher';

/**
 * The publisher's bookkeeping when a caller gives up, against a scripted stand-in for a
 * transactional producer (the integration test test/secure/kafka-paused.test.ts does the same
 * against a real, paused broker). Each step of a transaction waits until the test releases it.
 */
interface Step {
  kind: 'send' | 'commit' | 'abort';
  keys: string[];
  release(): void;
}

function scriptedProducer() {
  const steps: Step[] = [];
  const committed: string[] = [];
  const aborted: string[] = [];
  const waitFor = (kind: Step['kind'], keys: string[]) =>
    new Promise<void>((resolve) => steps.push({ kind, keys, release: resolve }));
  const producer = {
    transaction: async () => {
      let keys: string[] = [];
      return {
        sendBatch: async ({ topicMessages }: { topicMessages: Array<{ messages: Array<{ key: string }> }> }) => {
          keys = topicMessages.flatMap((t) => t.messages.map((m) => m.key));
          await waitFor('send', keys);
        },
        commit: async () => {
          await waitFor('commit', keys);
          committed.push(...keys);
        },
        abort: async () => {
          await waitFor('abort', keys);
          aborted.push(...keys);
        },
      };
    },
  } as unknown as Producer;
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

const trigger = (id: string): SyncTrigger => ({
  triggerId: id,
  courseId: 'c',
  batchId: 'b',
  userIds: ['u'],
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
    const publish = createTriggerPublisher([producer], 't', { transactional: true });
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
    const publish = createTriggerPublisher([producer], 't', { transactional: true });
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
    const publish = createTriggerPublisher([producer], 't', { transactional: true });
    const giveUp = new AbortController();
    const result = settled(publish(trigger('a'), { signal: giveUp.signal }));
    (await next('send')).release();
    const commit = await next('commit');
    giveUp.abort();
    commit.release();
    expect(await result).toBe('ok');
    expect(committed).toEqual(['a']);
  });

  test('a full queue refuses at once with SYNC_OVERLOADED', async () => {
    const { producer, next } = scriptedProducer();
    const publish = createTriggerPublisher([producer], 't', { transactional: true, maxQueued: 1 });
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
