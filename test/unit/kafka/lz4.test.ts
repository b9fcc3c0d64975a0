import { randomBytes } from 'node:crypto';
import { lz4Compress, lz4Decompress } from '../../../src/kafka/lz4';

function event(i: number): string {
  return JSON.stringify({
    eid: 'BE_JOB_REQUEST',
    ets: 1764201600000 + i,
    mid: `LP.${1764201600000 + i}.8c1e6f3e-${String(i).padStart(4, '0')}-5a7b-9d2e-2f1c4b6a8e0d`,
    actor: { id: 'Course Batch Updater', type: 'System' },
    edata: {
      action: 'user-enrolment-sync',
      userId: `user-${String(i).padStart(7, '0')}`,
      courseId: 'do_1130',
      batchId: 'b1',
    },
  });
}

describe('lz4', () => {
  it('writes the frame header Kafka writes: version 1, independent 64 KiB blocks, its checksum', () => {
    // 0x82 is xxHash32(0x60 0x40) >> 8, the header byte librdkafka and the Java client check.
    expect([...lz4Compress(Buffer.from('x')).subarray(0, 7)]).toEqual([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]);
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from('a')],
    ['shorter than the end rules allow a match in', Buffer.from('abcdabcdabcd')],
    ['a run (matches overlapping their own output)', Buffer.alloc(300_000, 0x61)],
    ['random bytes (blocks stored raw)', randomBytes(150_000)],
    ['sync events across several blocks', Buffer.from(Array.from({ length: 2_000 }, (_, i) => event(i)).join(''))],
    ['long literals then long matches', Buffer.concat([randomBytes(5_000), Buffer.alloc(70_000, 7), randomBytes(300)])],
  ])('%s: decompresses to the input', (_name, input) => {
    const frame = lz4Compress(input);
    expect(lz4Decompress(frame).equals(input)).toBe(true);
  });

  it('compresses sync events several times over and stores incompressible blocks raw', () => {
    const events = Buffer.from(Array.from({ length: 2_000 }, (_, i) => event(i)).join(''));
    expect(lz4Compress(events).length).toBeLessThan(events.length / 3);
    const noise = randomBytes(100_000);
    // Raw blocks cost their 4-byte size each, the header 7 and the end mark 4.
    expect(lz4Compress(noise).length).toBe(noise.length + 2 * 4 + 7 + 4);
  });

  it('reads frames of several blocks back to back, as a batch of them arrives', () => {
    const a = Buffer.from(event(1).repeat(50));
    const b = Buffer.from(event(2).repeat(3));
    expect(lz4Decompress(Buffer.concat([lz4Compress(a), lz4Compress(b)])).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('refuses what is not an LZ4 frame', () => {
    expect(() => lz4Decompress(Buffer.from('not a frame at all'))).toThrow(/lz4: not an LZ4 frame/);
  });
});
