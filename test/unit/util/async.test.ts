import { mapConcurrent, mergeBounded, withDeadline } from '../../../src/util/async';

async function* counted(label: string, n: number, log: string[]): AsyncGenerator<string> {
  for (let i = 0; i < n; i++) {
    log.push(`${label}${i}`);
    await new Promise((r) => setImmediate(r));
    yield `${label}${i}`;
  }
}

describe('mergeBounded', () => {
  test('yields every item of every source exactly once', async () => {
    const log: string[] = [];
    const sources = ['a', 'b', 'c', 'd', 'e'].map((l) => () => counted(l, 50, log));
    const out: string[] = [];
    for await (const item of mergeBounded(sources, 2, 4)) out.push(item);
    expect(out).toHaveLength(250);
    expect(new Set(out).size).toBe(250);
  });

  test('sources run ahead of the consumer by at most the capacity', async () => {
    const produced: string[] = [];
    const sources = [() => counted('a', 1000, produced), () => counted('b', 1000, produced)];
    const iterator = mergeBounded(sources, 2, 5);
    let consumed = 0;
    for await (const _ of iterator) {
      consumed++;
      await new Promise((r) => setTimeout(r, 1));
      // Each source may hold one item in hand beyond the queue's capacity.
      expect(produced.length - consumed).toBeLessThanOrEqual(5 + 2);
      if (consumed === 100) break;
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(produced.length).toBeLessThanOrEqual(100 + 5 + 2);
  });

  test('the first error reaches the consumer', async () => {
    async function* failing(): AsyncGenerator<number> {
      yield 1;
      throw new Error('range failed');
    }
    const run = async () => {
      for await (const _ of mergeBounded([failing, failing], 2, 2)) {
        // drain
      }
    };
    await expect(run()).rejects.toThrow('range failed');
  });
});

test('mapConcurrent keeps order and never exceeds its concurrency', async () => {
  let running = 0;
  let peak = 0;
  const out = await mapConcurrent([5, 4, 3, 2, 1, 0], 2, async (n) => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, n));
    running--;
    return n * 2;
  });
  expect(out).toEqual([10, 8, 6, 4, 2, 0]);
  expect(peak).toBe(2);
});

test('withDeadline rejects a promise that takes too long', async () => {
  await expect(withDeadline(new Promise(() => undefined), 10, () => new Error('late'))).rejects.toThrow('late');
  await expect(withDeadline(Promise.resolve(3), 1000, () => new Error('late'))).resolves.toBe(3);
});
