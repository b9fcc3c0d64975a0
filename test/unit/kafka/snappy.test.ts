import { snappyDecodeBlock, snappyDecompress } from '../../../src/kafka/snappy';

/** A varint, as Snappy writes a block's length. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
const bytes = (s: string) => [...Buffer.from(s)];
/** A literal of up to 60 bytes: the tag holds its length - 1. */
const literal = (s: string) => [(s.length - 1) << 2, ...bytes(s)];

describe('snappy', () => {
  it('decodes literals and a copy that overlaps its own output (1-byte offset form)', () => {
    // "abc", then 9 bytes copied from 3 back: the copy reads what it is writing.
    const block = Buffer.from([...varint(12), ...literal('abc'), (5 << 2) | 1, 3]);
    expect(snappyDecodeBlock(block).toString()).toBe('abcabcabcabc');
  });

  it('decodes long literals (length in 1 and 2 extra bytes) and the 2- and 4-byte offset copies', () => {
    const a = 'x'.repeat(100);
    const b = 'y'.repeat(300);
    const block = Buffer.from([
      ...varint(100 + 300 + 20 + 30),
      60 << 2,
      99,
      ...bytes(a), // 1 extra byte: length - 1 = 99
      61 << 2,
      299 & 0xff,
      299 >> 8,
      ...bytes(b), // 2 extra bytes: length - 1 = 299
      ((20 - 1) << 2) | 2,
      400 & 0xff,
      400 >> 8, // 20 bytes from 400 back: the x's
      ((30 - 1) << 2) | 3,
      50,
      0,
      0,
      0, // 30 bytes from 50 back: y's
    ]);
    expect(snappyDecodeBlock(block).toString()).toBe(a + b + 'x'.repeat(20) + 'y'.repeat(30));
  });

  it("reads snappy-java's framing (the Java client's) chunk by chunk, and a bare block (librdkafka's)", () => {
    const chunk = (s: string) => {
      const block = Buffer.from([...varint(s.length), ...literal(s)]);
      const size = Buffer.alloc(4);
      size.writeUInt32BE(block.length);
      return Buffer.concat([size, block]);
    };
    const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(snappyDecompress(Buffer.concat([header, chunk('first '), chunk('second')])).toString()).toBe('first second');
    expect(snappyDecompress(Buffer.from([...varint(5), ...literal('plain')])).toString()).toBe('plain');
  });

  it.each([
    ['a copy reaching before the start', [...varint(8), ...literal('ab'), (2 << 2) | 1, 9]],
    ['a literal past the end', [...varint(10), 9 << 2, ...bytes('abc')]],
    ['fewer bytes than the stated length', [...varint(10), ...literal('abc')]],
    ['an unterminated length', [0x80, 0x80]],
  ])('refuses %s', (_what, block) => {
    expect(() => snappyDecodeBlock(Buffer.from(block))).toThrow(/^snappy: /);
  });
});
