import {
  syncEventJson,
  buildSyncEvent,
  syncEventUuid,
  writeSyncEventsJson,
} from '../../../processors/enrolment-sync/sync-event';
import { RecordBuffers } from '../../../src/streams/record-buffers';

const trigger = (triggerId: string) => ({ triggerId, courseId: 'c', batchId: 'b', requestedAt: 1700000000000 });
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
/** What the event of `userId` must read, whatever happened to the buffers meanwhile. */
const expected = (triggerId: string, userId: string) =>
  syncEventJson(buildSyncEvent('c', 'b', userId, 1700000000000, syncEventUuid(triggerId, userId)));

describe('record buffers', () => {
  test('a buffer is handed out again only once every record written into it is released', () => {
    const pool = new RecordBuffers(64 * 1024, 4);
    // About 150 events a buffer: 1,000 users fill several (the last one, sized to the rest, is not the pool's).
    const first = writeSyncEventsJson(trigger('t1'), ids('a', 1000), pool);
    const full = new Set(first.map((r) => r.value.buffer).filter((b) => b.byteLength === pool.bufferBytes));
    expect(full.size).toBeGreaterThan(2);
    expect(pool.stats()).toEqual({ allocated: full.size, reused: 0, free: 0 });

    // Every record but the first released: the other full buffers are free, the first one is not.
    const [kept, ...rest] = first as [{ key: Buffer; value: Buffer }, ...Array<{ value: Buffer }>];
    pool.release(rest);
    expect(pool.stats().free).toBe(Math.min(4, full.size - 1));
    const second = writeSyncEventsJson(trigger('t2'), ids('b', 1000), pool);
    expect(pool.stats().reused).toBeGreaterThan(0);
    expect(second.some((r) => r.value.buffer === kept.value.buffer)).toBe(false);
    expect(kept.value.toString()).toBe(expected('t1', 'a-0'));
    expect(kept.key.toString()).toBe('a-0');
    for (const [i, r] of second.entries()) expect(r.value.toString()).toBe(expected('t2', `b-${i}`));

    pool.release([kept]);
    const third = writeSyncEventsJson(trigger('t3'), ids('c', 200), pool);
    expect(third.some((r) => r.value.buffer === kept.value.buffer)).toBe(true);
  });

  test('released records that were never lent, strings and small buffers are ignored', () => {
    const pool = new RecordBuffers(64 * 1024, 4);
    // One user's events fit in a small buffer from Node's pool, which is never the pool's.
    const small = writeSyncEventsJson(trigger('t'), ['u'], pool);
    pool.release([...small, { value: 'text' }, { value: Buffer.alloc(10) }, { value: null }]);
    expect(pool.stats()).toEqual({ allocated: 0, reused: 0, free: 0 });
  });

  test('at most maxFree buffers are kept free; the rest go to the garbage collector', () => {
    const pool = new RecordBuffers(64 * 1024, 2);
    const records = writeSyncEventsJson(trigger('t'), ids('a', 1000), pool);
    pool.release(records);
    expect(pool.stats().allocated).toBeGreaterThan(2);
    expect(pool.stats().free).toBe(2);
  });
});
