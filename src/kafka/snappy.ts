/**
 * Snappy decompression for kafkajs, which has no Snappy codec of its own: so that a trigger
 * batch an upstream Java, Go or librdkafka producer wrote with compression snappy is read, not
 * a crash the consumer retries for ever. The Java client frames its Snappy batches the way
 * snappy-java's stream does (a magic header, then chunks of a 4-byte big-endian length and a raw
 * Snappy block); librdkafka may write a bare block. Both are read, following Snappy's format
 * description (format_description.txt in google/snappy).
 */

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
/** The magic, then two 4-byte versions. */
const XERIAL_HEADER = XERIAL_MAGIC.length + 8;

function fail(what: string): never {
  throw new Error(`snappy: ${what}`);
}

/** One raw Snappy block: a varint of its length, then literals and copies. */
export function snappyDecodeBlock(src: Buffer, from = 0, to = src.length): Buffer {
  let i = from;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    if (i >= to || shift > 28) fail('bad length');
    const b = src[i++] as number;
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  const out = Buffer.allocUnsafe(length);
  let o = 0;
  while (i < to) {
    const tag = src[i++] as number;
    if ((tag & 3) === 0) {
      let literal = tag >>> 2;
      if (literal >= 60) {
        const bytes = literal - 59;
        if (i + bytes > to) fail('literal length runs past the block');
        literal = src.readUIntLE(i, bytes);
        i += bytes;
      }
      literal += 1;
      if (i + literal > to || o + literal > length) fail('literal runs past the block');
      src.copy(out, o, i, i + literal);
      i += literal;
      o += literal;
      continue;
    }
    let copy: number;
    let offset: number;
    if ((tag & 3) === 1) {
      if (i + 1 > to) fail('copy runs past the block');
      copy = 4 + ((tag >>> 2) & 7);
      offset = ((tag >>> 5) << 8) | (src[i++] as number);
    } else if ((tag & 3) === 2) {
      if (i + 2 > to) fail('copy runs past the block');
      copy = (tag >>> 2) + 1;
      offset = src.readUInt16LE(i);
      i += 2;
    } else {
      if (i + 4 > to) fail('copy runs past the block');
      copy = (tag >>> 2) + 1;
      offset = src.readUInt32LE(i);
      i += 4;
    }
    if (offset === 0 || offset > o) fail('copy offset out of range');
    if (o + copy > length) fail('copy runs past the stated length');
    if (offset >= copy) {
      out.copy(out, o, o - offset, o - offset + copy);
      o += copy;
    } else {
      for (let m = o - offset, end = o + copy; o < end;) out[o++] = out[m++] as number;
    }
  }
  if (o !== length) fail(`block holds ${o} bytes, says ${length}`);
  return out;
}

/** A Kafka Snappy payload: snappy-java's framing when it starts with its magic, else one raw block. */
export function snappyDecompress(src: Buffer): Buffer {
  if (src.length < XERIAL_HEADER || !src.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) {
    return snappyDecodeBlock(src);
  }
  const parts: Buffer[] = [];
  for (let i = XERIAL_HEADER; i < src.length;) {
    if (i + 4 > src.length) fail('chunk length runs past the payload');
    const size = src.readUInt32BE(i);
    i += 4;
    if (i + size > src.length) fail('chunk runs past the payload');
    parts.push(snappyDecodeBlock(src, i, i + size));
    i += size;
  }
  return Buffer.concat(parts);
}
