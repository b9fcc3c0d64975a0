import { MAX_TOKEN, MIN_TOKEN, ringFraction, splitRange } from '../../../src/cassandra/token-ranges';

describe('token ranges', () => {
  test('split ranges cover the ring exactly, without gaps or overlaps', () => {
    for (const parts of [1, 3, 64, 1000]) {
      const ranges = splitRange({ start: MIN_TOKEN, end: MAX_TOKEN }, parts);
      expect(ranges).toHaveLength(parts);
      expect(ranges[0]!.start).toBe(MIN_TOKEN);
      expect(ranges[ranges.length - 1]!.end).toBe(MAX_TOKEN);
      for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.start).toBe(ranges[i - 1]!.end);
      for (const r of ranges) expect(r.end > r.start).toBe(true);
    }
  });

  test('a range narrower than the parts asked for splits into single tokens', () => {
    expect(splitRange({ start: 10n, end: 13n }, 8)).toEqual([
      { start: 10n, end: 11n },
      { start: 11n, end: 12n },
      { start: 12n, end: 13n },
    ]);
    expect(splitRange({ start: 5n, end: 5n }, 4)).toEqual([]);
  });

  test('ring fraction', () => {
    expect(ringFraction(MIN_TOKEN)).toBe(0);
    expect(ringFraction(MAX_TOKEN)).toBe(1);
    expect(ringFraction(0n)).toBeCloseTo(0.5, 10);
  });
});
