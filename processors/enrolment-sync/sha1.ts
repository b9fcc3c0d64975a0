/**
 * SHA-1 (FIPS 180-4) of bytes already in a caller's buffer, for the name-based UUID of every
 * sync event. A call into node:crypto costs a binding round trip and a fresh digest Buffer (an
 * ArrayBuffer the garbage collector must track) per event; this allocates nothing, and the caller
 * reads the words it needs from `state`. Measured in docs/benchmarks.md ("CPU per event").
 */

const W = new Int32Array(80);

/** The digest of the last sha1Padded call, as five big-endian 32-bit words (h0…h4). */
export const sha1State = new Int32Array(5);

/** The buffer size sha1Padded needs for a message of `length` bytes: whole 64-byte blocks. */
export function sha1PaddedSize(length: number): number {
  return (((length + 8) >>> 6) + 1) * 64;
}

/**
 * SHA-1 of buf[0, length). Pads in place: buf must hold sha1PaddedSize(length) bytes, and the
 * bytes from `length` on are overwritten. The digest is left in sha1State.
 */
export function sha1Padded(buf: Uint8Array, length: number): void {
  const end = sha1PaddedSize(length);
  buf[length] = 0x80;
  for (let i = length + 1; i < end - 8; i++) buf[i] = 0;
  // The message length in bits, a 64-bit big-endian integer; names here never reach 2^32 bits.
  const bits = length * 8;
  const hi = Math.floor(bits / 0x100000000);
  buf[end - 8] = hi >>> 24;
  buf[end - 7] = hi >>> 16;
  buf[end - 6] = hi >>> 8;
  buf[end - 5] = hi;
  buf[end - 4] = bits >>> 24;
  buf[end - 3] = bits >>> 16;
  buf[end - 2] = bits >>> 8;
  buf[end - 1] = bits;

  let h0 = 0x67452301 | 0;
  let h1 = 0xefcdab89 | 0;
  let h2 = 0x98badcfe | 0;
  let h3 = 0x10325476 | 0;
  let h4 = 0xc3d2e1f0 | 0;
  for (let block = 0; block < end; block += 64) {
    for (let i = 0; i < 16; i++) {
      const p = block + 4 * i;
      W[i] =
        ((buf[p] as number) << 24) |
        ((buf[p + 1] as number) << 16) |
        ((buf[p + 2] as number) << 8) |
        (buf[p + 3] as number);
    }
    for (let i = 16; i < 80; i++) {
      const x = (W[i - 3] as number) ^ (W[i - 8] as number) ^ (W[i - 14] as number) ^ (W[i - 16] as number);
      W[i] = (x << 1) | (x >>> 31);
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    for (let i = 0; i < 20; i++) {
      const t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + (W[i] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (let i = 20; i < 40; i++) {
      const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + (W[i] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (let i = 40; i < 60; i++) {
      const t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e + 0x8f1bbcdc + (W[i] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (let i = 60; i < 80; i++) {
      const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0xca62c1d6 + (W[i] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  sha1State[0] = h0;
  sha1State[1] = h1;
  sha1State[2] = h2;
  sha1State[3] = h3;
  sha1State[4] = h4;
}
