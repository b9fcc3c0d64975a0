import { foldStatus, statusPartition, type StatusPart } from '../../../src/streams/status';

const request: StatusPart = {
  part: 'request',
  triggerId: 't',
  courseId: 'c',
  batchId: 'b',
  users: null,
  requestedBy: 'ops',
  requestedAt: 1000,
  source: 'batch',
};
const work = (part: 'trigger' | 'task', extra: Partial<StatusPart> = {}) =>
  ({
    part,
    triggerId: 't',
    state: 'running',
    produced: 0,
    rowsRead: 0,
    startedAt: 2000,
    updatedAt: 2000,
    ...extra,
  }) as StatusPart;

describe('trigger status, folded from its parts', () => {
  test('accepted before the processor starts it', () => {
    expect(foldStatus('t', [request], 3000)).toMatchObject({
      state: 'accepted',
      requestedBy: 'ops',
      eventsProduced: 0,
    });
  });

  test('a fanned-out trigger is running until every task is done, counts summed, progress from the tasks', () => {
    const parts = [
      request,
      work('trigger', { state: 'done', tasks: 4, produced: 10, rowsRead: 10, finishedAt: 2100 }),
      work('task', { index: 0, state: 'done', produced: 100, rowsRead: 110, updatedAt: 4000, finishedAt: 4000 }),
      work('task', { index: 1, produced: 50, rowsRead: 55, progress: 0.5, updatedAt: 4000 }),
    ];
    const s = foldStatus('t', parts, 12000);
    expect(s).toMatchObject({ state: 'running', eventsProduced: 160, rowsRead: 175, tasks: { done: 1, total: 4 } });
    expect(s?.progress).toBeCloseTo((1 + 0.5) / 4);
    expect(s?.eventsPerSecond).toBe(16); // 160 events in 10 s
    expect(s?.etaSeconds).toBe(Math.round((10 * (1 - 0.375)) / 0.375));
  });

  test('the ETA respects the configured pace when that is slower', () => {
    const parts = [work('trigger', { produced: 1000, progress: 0.5, updatedAt: 3000 })];
    // 1,000 more events at 10/s: 100 s, though the rate so far would say 1 s.
    expect(foldStatus('t', parts, 3000, 10)?.etaSeconds).toBe(100);
  });

  test('done when the trigger and all its tasks are; failed with the reason when any part failed', () => {
    const done = [work('trigger', { state: 'done', tasks: 1 }), work('task', { index: 0, state: 'done', produced: 5 })];
    expect(foldStatus('t', done, 5000)).toMatchObject({ state: 'done', progress: 1, eventsProduced: 5 });
    const failed = [
      work('trigger', { state: 'done', tasks: 2 }),
      work('task', { index: 0, state: 'failed', error: { code: 'SYNC_CASSANDRA_REQUEST_FAILED', message: 'timeout' } }),
    ];
    expect(foldStatus('t', failed, 5000)).toMatchObject({
      state: 'failed',
      error: { code: 'SYNC_CASSANDRA_REQUEST_FAILED', message: 'timeout' },
    });
  });

  test('dead letters: each part that failed is an input that was dead-lettered; none while all is well', () => {
    const twoTasksLost = [
      work('trigger', { state: 'done', tasks: 3 }),
      work('task', { index: 0, state: 'failed', error: { code: 'SYNC_BAD_TRIGGER', message: 'bad' } }),
      work('task', { index: 1, state: 'done', produced: 7 }),
      work('task', { index: 2, state: 'failed', error: { code: 'SYNC_BAD_TRIGGER', message: 'bad' } }),
    ];
    expect(foldStatus('t', twoTasksLost, 5000)).toMatchObject({ state: 'failed', deadLetters: 2 });
    expect(foldStatus('t', [work('trigger', { state: 'failed' })], 5000)?.deadLetters).toBe(1);
    expect(foldStatus('t', [request, work('trigger', { produced: 3 })], 5000)?.deadLetters).toBe(0);
    expect(foldStatus('t', [request], 5000)?.deadLetters).toBe(0);
  });

  test('a trigger that joined a running one says which', () => {
    expect(foldStatus('t', [work('trigger', { state: 'done', joinedTo: 'other' })], 5000)).toMatchObject({
      state: 'joined',
      joinedTo: 'other',
    });
  });

  test('no parts, no status; every part of a trigger lands on one partition', () => {
    expect(foldStatus('t', [], 0)).toBeUndefined();
    expect(statusPartition('some-trigger', 4)).toBe(statusPartition('some-trigger', 4));
    const spread = new Set(Array.from({ length: 100 }, (_, i) => statusPartition(`t-${i}`, 4)));
    expect(spread.size).toBe(4);
  });
});
