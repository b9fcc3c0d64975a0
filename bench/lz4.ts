/**
 * LZ4 decompression for kafkajs, which has no LZ4 codec of its own: enough for the benchmark to
 * read what the Java peer writes (kafka-clients, compression.type=lz4). Kafka's LZ4 batches are
 * LZ4 frames (KIP-57); this decodes the frame format and its blocks as the LZ4 frame and block
 * specifications give them. Checksums are skipped: each Kafka record batch carries a CRC32C of
 * its own. Compression is not needed and not provided.
 */
import { CompressionCodecs, CompressionTypes } from 'kafkajs';

const MAGIC = 0x184d2204;

function fail(what: string): never {
  throw new Error(`lz4: ${what}`);
}

/** One LZ4 block into `out` from `start`; returns where the output ends. */
function decodeBlock(src: Buffer, from: number, to: number, out: Buffer, start: number): number {
  let i = from;
  let o = start;
  for (;;) {
    const token = src[i++] as number;
    let literals = token >>> 4;
    if (literals === 15) {
      let b: number;
      do {
        b = src[i++] as number;
        literals += b;
      } while (b === 255);
    }
    if (i + literals > to) fail('literals run past the block');
    src.copy(out, o, i, i + literals);
    i += literals;
    o += literals;
    if (i >= to) return o; // the last sequence has literals only
    const offset = (src[i] as number) | ((src[i + 1] as number) << 8);
    i += 2;
    if (offset === 0 || offset > o - start) fail('match offset out of range');
    let length = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        b = src[i++] as number;
        length += b;
      } while (b === 255);
    }
    if (o + length > out.length) fail('block larger than its frame allows');
    let m = o - offset;
    if (offset >= length) {
      out.copy(out, o, m, m + length);
      o += length;
    } else {
      for (const end = o + length; o < end;) out[o++] = out[m++] as number;
    }
  }
}

/** Every frame in `src`, concatenated. */
export function lz4Decompress(src: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i < src.length) {
    if (src.readUInt32LE(i) !== MAGIC) fail('not an LZ4 frame');
    const flg = src[i + 4] as number;
    const bd = src[i + 5] as number;
    if (flg >>> 6 !== 1) fail(`frame version ${flg >>> 6}`);
    if ((flg & 0x20) === 0) fail('linked blocks'); // Kafka writes independent blocks
    const blockChecksum = (flg & 0x10) !== 0;
    const contentSize = (flg & 0x08) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    const dictId = (flg & 0x01) !== 0;
    const maxBlock = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20][(bd >>> 4) & 7] ?? 0;
    if (maxBlock === 0) fail('bad block maximum size');
    i += 6 + (contentSize ? 8 : 0) + (dictId ? 4 : 0) + 1; // + header checksum
    const out = Buffer.allocUnsafe(maxBlock);
    for (;;) {
      const word = src.readUInt32LE(i);
      i += 4;
      if (word === 0) break;
      const size = word & 0x7fffffff;
      if (size > maxBlock || i + size > src.length) fail('bad block size');
      if (word & 0x80000000) {
        parts.push(Buffer.from(src.subarray(i, i + size)));
      } else {
        const end = decodeBlock(src, i, i + size, out, 0);
        parts.push(Buffer.from(out.subarray(0, end)));
      }
      i += size + (blockChecksum ? 4 : 0);
    }
    i += contentChecksum ? 4 : 0;
  }
  return Buffer.concat(parts);
}

/** Lets kafkajs consumers read LZ4-compressed batches. */
export function registerLz4(): void {
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    compress: async () => fail('compression is not provided'),
    decompress: async (buffer: Buffer) => lz4Decompress(buffer),
  });
}
