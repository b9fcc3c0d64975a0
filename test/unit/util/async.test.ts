import { Budget, mapConcurrent, mergeBounded, withDeadline } from '../../../src/util/async';

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

describe('Budget', () => {
  const tick = () => new Promise((r) => setImmediate(r));

  test('grants up to its capacity; the rest waits until enough is given back, first come first served', async () => {
    const budget = new Budget(10);
    await budget.take(6);
    const order: string[] = [];
    const big = budget.take(8).then(() => order.push('big'));
    const small = budget.take(2).then(() => order.push('small'));
    await tick();
    // 2 would fit, but it queued behind 8: a stream of small takes cannot starve a big one.
    expect(order).toEqual([]);
    expect(budget.inUse).toBe(6);
    budget.give(6);
    await big;
    await small;
    expect(order).toEqual(['big', 'small']);
    expect(budget.inUse).toBe(10);
    budget.give(10);
    expect(budget.inUse).toBe(0);
  });

  test('an amount larger than the whole budget is granted once nothing else is held', async () => {
    const budget = new Budget(5);
    await budget.take(3);
    let granted = false;
    const huge = budget.take(50).then(() => (granted = true));
    await tick();
    expect(granted).toBe(false);
    budget.give(3);
    await huge;
    expect(budget.inUse).toBe(50);
  });

  test('an aborted wait takes nothing and lets the next in line through', async () => {
    const budget = new Budget(4);
    await budget.take(3);
    const stop = new AbortController();
    const aborted = budget.take(4, stop.signal);
    const next = budget.take(1);
    stop.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
    await next;
    expect(budget.inUse).toBe(4);
    await expect(budget.take(1, stop.signal)).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
    expect(budget.inUse).toBe(4);
  });
});
