import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/** V8's default growth factor of the young generation (--semi-space-growth-factor). */
const DEFAULT_GROWTH = 2;

/** Whether node was started with `flag` of its own (on its command line or in NODE_OPTIONS): that choice wins. */
function givenToNode(flag: string): boolean {
  return [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes(flag));
}

let active: (() => void) | undefined;

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
export function capYoungGeneration(semiSpaceMb: number): () => void {
  // One cap for the whole process, however many services it starts (tests start several).
  if (active) return active;
  if (givenToNode('semi-space-size') || semiSpaceMb <= 0) return () => undefined;
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

let oldGrowthActive: (() => void) | undefined;

/**
 * Makes V8 grow the old generation by `percent` over what survived the last full collection
 * before it collects again, as `--heap-growing-percent` would from the command line (V8 reads
 * the flag each time it sets the next limit, so it can be set at run time).
 *
 * Why: by default V8 picks the factor from how fast it collects against how fast the program
 * allocates, up to 4 × the live size on a machine with this much memory. A long expansion
 * allocates quickly and keeps little alive (the read-ahead and the sends in flight), so the old
 * generation filled with garbage up to 70–90 MB, and with it went the buffers it refers to
 * (events, Kafka requests): their memory is freed only when the collector finds them. Growing by a
 * fixed share keeps that garbage in proportion to what is alive, however long the run is. It is
 * not a cap: the heap still grows as far as the live data needs.
 *
 * Does nothing when node was started with its own --heap-growing-percent. Returns a stop
 * function that puts V8's own heuristic back.
 */
export function limitOldGenerationGrowth(percent: number): () => void {
  if (oldGrowthActive) return oldGrowthActive;
  if (givenToNode('heap-growing-percent') || percent <= 0) return () => undefined;
  v8.setFlagsFromString(`--heap-growing-percent=${Math.round(percent)}`);
  oldGrowthActive = () => {
    // 0 is V8's default: the factor chosen by its own heuristic.
    v8.setFlagsFromString('--heap-growing-percent=0');
    oldGrowthActive = undefined;
  };
  return oldGrowthActive;
}
