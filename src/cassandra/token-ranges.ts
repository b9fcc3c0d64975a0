// The driver ships the partitioner hash it uses for token-aware routing; not in its typings.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Murmur3Tokenizer } = require('cassandra-driver/lib/tokenizer') as {
  Murmur3Tokenizer: new () => { hash(b: Buffer): unknown };
};

/**
 * Murmur3Partitioner tokens are signed 64-bit integers; no key ever hashes to the minimum, so the
 * ranges (start, end] from MIN to MAX cover every partition exactly once.
 */
export const MIN_TOKEN = -(2n ** 63n);
export const MAX_TOKEN = 2n ** 63n - 1n;

export interface TokenRange {
  /** exclusive */
  start: bigint;
  /** inclusive */
  end: bigint;
}

export function splitRange(range: TokenRange, parts: number): TokenRange[] {
  const width = range.end - range.start;
  if (width <= 0n) return [];
  const n = BigInt(Math.max(1, Math.min(parts, Number(width > 1_000_000n ? 1_000_000n : width))));
  const ranges: TokenRange[] = [];
  let start = range.start;
  for (let i = 1n; i <= n; i++) {
    const end = i === n ? range.end : range.start + (width * i) / n;
    if (end > start) ranges.push({ start, end });
    start = end;
  }
  return ranges;
}

/** The share of the whole ring that lies in (MIN, token]: 0 at MIN, 1 at MAX. */
export function ringFraction(token: bigint): number {
  return Number(token - MIN_TOKEN) / Number(MAX_TOKEN - MIN_TOKEN);
}

const murmur3 = new Murmur3Tokenizer();

/** The Murmur3Partitioner token of a text partition key, as Cassandra computes it. */
export function tokenOf(key: string): bigint {
  const token = murmur3.hash(Buffer.from(key, 'utf8')) as { getValue(): { toString(): string } };
  return BigInt(token.getValue().toString());
}
