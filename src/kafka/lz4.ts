/**
 * LZ4 for kafkajs, which has no LZ4 codec of its own. kafkajs consumers (the runtime's own, `watch`,
 * the tests and the bench) read what librdkafka and the Java client write with
 * compression lz4, and the kafkajs adapter can write it too (KAFKA_COMPRESSION). Kafka's LZ4
 * batches are LZ4 frames (KIP-57) with independent blocks; this follows the LZ4 frame and block
 * specifications. Decoding skips the block and content checksums (each Kafka record batch carries
 * a CRC32C of its own); encoding writes the header checksum, which librdkafka and the Java client
 * check, and no others.
 */

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

/** xxHash32 (seed 0) of a few bytes: the frame header's checksum is its second byte. */
function xxh32Short(bytes: Uint8Array): number {
  const PRIME1 = 2654435761;
  const PRIME2 = 2246822519;
  const PRIME3 = 3266489917;
  const PRIME4 = 668265263;
  const PRIME5 = 374761393;
  const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;
  if (bytes.length >= 16) fail('xxh32Short takes fewer than 16 bytes');
  let h = (PRIME5 + bytes.length) >>> 0;
  let i = 0;
  for (; i + 4 <= bytes.length; i += 4) {
    const word =
      ((bytes[i] as number) |
        ((bytes[i + 1] as number) << 8) |
        ((bytes[i + 2] as number) << 16) |
        ((bytes[i + 3] as number) << 24)) >>>
      0;
    h = Math.imul(rotl((h + Math.imul(word, PRIME3)) >>> 0, 17), PRIME4) >>> 0;
  }
  for (; i < bytes.length; i++)
    h = Math.imul(rotl((h + Math.imul(bytes[i] as number, PRIME5)) >>> 0, 11), PRIME1) >>> 0;
  h = Math.imul(h ^ (h >>> 15), PRIME2) >>> 0;
  h = Math.imul(h ^ (h >>> 13), PRIME3) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Version 1, independent blocks, no checksums but the header's, no content size (what Kafka writes). */
const FLG = 0x60;
/** Blocks of at most 64 KiB, as the Java client writes them. */
const BD = 0x40;
const BLOCK = 64 << 10;
const HEADER = Buffer.from([0x04, 0x22, 0x4d, 0x18, FLG, BD, (xxh32Short(Uint8Array.of(FLG, BD)) >>> 8) & 0xff]);
/** The block format's end rules: the last match starts 12 bytes before the end, the last 5 bytes are literals. */
const MF_LIMIT = 12;
const LAST_LITERALS = 5;
const HASH_BITS = 12;
const MAX_OFFSET = 65535;

/** A length's extra bytes beyond the token's 15. */
function writeLength(out: Buffer, o: number, extra: number): number {
  while (extra >= 255) {
    out[o++] = 255;
    extra -= 255;
  }
  out[o++] = extra;
  return o;
}

/**
 * One block, greedy: each position is looked up by its first four bytes in a table of the last
 * position with the same hash; a hit that matches is extended as far as the end rules allow.
 * Returns where the output ends; the caller stores the block raw if that is no smaller.
 */
function encodeBlock(src: Buffer, from: number, to: number, out: Buffer, start: number, table: Int32Array): number {
  table.fill(-1);
  let o = start;
  let anchor = from;
  const matchStartLimit = to - MF_LIMIT;
  const matchEndLimit = to - LAST_LITERALS;
  let i = from;
  while (i < matchStartLimit) {
    const word = src.readUInt32LE(i);
    const h = Math.imul(word, 2654435761) >>> (32 - HASH_BITS);
    const ref = table[h] as number;
    table[h] = i;
    if (ref < 0 || i - ref > MAX_OFFSET || src.readUInt32LE(ref) !== word) {
      // Incompressible stretches are skipped faster the longer they run, as the reference encoder does.
      i += 1 + ((i - anchor) >>> 6);
      continue;
    }
    let length = 4;
    while (i + length < matchEndLimit && src[ref + length] === src[i + length]) length++;
    const literals = i - anchor;
    const token = o++;
    out[token] = (Math.min(literals, 15) << 4) | Math.min(length - 4, 15);
    if (literals >= 15) o = writeLength(out, o, literals - 15);
    src.copy(out, o, anchor, i);
    o += literals;
    out[o++] = (i - ref) & 0xff;
    out[o++] = (i - ref) >>> 8;
    if (length - 4 >= 15) o = writeLength(out, o, length - 4 - 15);
    i += length;
    anchor = i;
  }
  const literals = to - anchor;
  out[o++] = Math.min(literals, 15) << 4;
  if (literals >= 15) o = writeLength(out, o, literals - 15);
  src.copy(out, o, anchor, to);
  return o + literals;
}

/** `src` as one LZ4 frame of independent 64 KiB blocks, each stored raw where compressing does not pay. */
export function lz4Compress(src: Buffer): Buffer {
  const blocks = Math.max(1, Math.ceil(src.length / BLOCK));
  // Worst case per block: its size, a length byte per 255 literals, a token and the size word.
  const out = Buffer.allocUnsafe(HEADER.length + src.length + blocks * (Math.ceil(BLOCK / 255) + 16) + 4);
  HEADER.copy(out, 0);
  let o = HEADER.length;
  const table = new Int32Array(1 << HASH_BITS);
  for (let from = 0; from < src.length; from += BLOCK) {
    const to = Math.min(src.length, from + BLOCK);
    const end = encodeBlock(src, from, to, out, o + 4, table);
    const size = end - (o + 4);
    if (size < to - from) {
      out.writeUInt32LE(size, o);
      o = end;
    } else {
      out.writeUInt32LE(((to - from) | 0x80000000) >>> 0, o);
      src.copy(out, o + 4, from, to);
      o += 4 + (to - from);
    }
  }
  out.writeUInt32LE(0, o); // the end mark
  return out.subarray(0, o + 4);
}
