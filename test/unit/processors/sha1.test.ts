import { createHash } from 'node:crypto';
import { sha1Padded, sha1PaddedSize, sha1State } from '../../../processors/enrolment-sync/sha1';

function digestOf(message: Buffer): string {
  const buf = Buffer.alloc(sha1PaddedSize(message.length), 0xaa); // stale bytes past the message
  message.copy(buf);
  sha1Padded(buf, message.length);
  const out = Buffer.alloc(20);
  for (let i = 0; i < 5; i++) out.writeInt32BE(sha1State[i] as number, 4 * i);
  return out.toString('hex');
}

describe('sha1Padded', () => {
  test('gives the FIPS 180-4 test vectors', () => {
    expect(digestOf(Buffer.from('abc'))).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect(digestOf(Buffer.alloc(0))).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
    expect(digestOf(Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toBe(
      '84983e441c3bd26ebaae4aa1f95129e5e54670f1',
    );
  });

  test('matches node:crypto at every length around the block and padding boundaries', () => {
    for (let length = 0; length <= 300; length++) {
      const message = Buffer.from(Array.from({ length }, (_, i) => (i * 131 + length * 7) & 0xff));
      expect(digestOf(message)).toBe(createHash('sha1').update(message).digest('hex'));
    }
    const long = Buffer.from('x'.repeat(210_000));
    expect(digestOf(long)).toBe(createHash('sha1').update(long).digest('hex'));
  });

  test('pads to whole blocks with room for the 64-bit length', () => {
    expect(sha1PaddedSize(0)).toBe(64);
    expect(sha1PaddedSize(55)).toBe(64);
    expect(sha1PaddedSize(56)).toBe(128);
    expect(sha1PaddedSize(64)).toBe(128);
    expect(sha1PaddedSize(119)).toBe(128);
    expect(sha1PaddedSize(120)).toBe(192);
  });
});
