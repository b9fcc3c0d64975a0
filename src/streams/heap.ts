import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/** V8's default growth factor of the young generation (--semi-space-growth-factor). */
const DEFAULT_GROWTH = 2;

/**
 * Lets V8's young generation grow to `semiSpaceMb` per semi-space and no further, as
 * `--max-semi-space-size` would from the command line (which cannot be changed once V8 runs).
 *
 * Why: a long expansion keeps a steady stream of records in flight, so many young objects
 * survive a scavenge, and V8 answers by doubling the young generation. Node 24 lets it reach
 * 64 MB semi-spaces on a machine with this much memory (Node 20 stopped at 16 MB), and the peak
 * RSS of a 1,000,000-user expansion followed it (docs/benchmarks.md). The growth factor is read
 * at each growth, so it is set to 1 once the cap is reached and back to V8's default if V8 ever
 * shrinks the young generation below it. Checked after garbage collections (observers run
 * between turns of the event loop, so a long synchronous stretch can still pass it by a step).
 *
 * Does nothing when node was started with its own --max-semi-space-size. Returns a stop function.
 */
let active: (() => void) | undefined;

export function capYoungGeneration(semiSpaceMb: number): () => void {
  // One cap for the whole process, however many services it starts (tests start several).
  if (active) return active;
  const chosen = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes('semi-space-size'));
  if (chosen || semiSpaceMb <= 0) return () => undefined;
  // new_space's size counts both semi-spaces.
  const limit = 2 * semiSpaceMb * 2 ** 20;
  let growth = DEFAULT_GROWTH;
  const check = (): void => {
    const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    if (!young) return;
    // Stop before a growth would pass the cap: checks come between collections, not inside them.
    const wanted = young.space_size * DEFAULT_GROWTH > limit ? 1 : DEFAULT_GROWTH;
    if (wanted !== growth) {
      growth = wanted;
      v8.setFlagsFromString(`--semi-space-growth-factor=${wanted}`);
    }
  };
  const observer = new PerformanceObserver(check);
  observer.observe({ entryTypes: ['gc'] });
  active = () => {
    observer.disconnect();
    if (growth !== DEFAULT_GROWTH) v8.setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH}`);
    growth = DEFAULT_GROWTH;
    active = undefined;
  };
  return active;
}
