/**
 * Loaded into the processor with `node --require` when the bench is asked to split its peak RSS
 * (BENCH_MEMORY_SPLIT=1): every 100 ms it reads process.memoryUsage(), and whenever the RSS is at a
 * new high it keeps how that RSS divides into the V8 heap (committed), external memory (array
 * buffers, mostly) and the rest (the node binary, malloc, the Kafka client's native threads and
 * queues). Written as JSON to BENCH_MEMORY_SPLIT_FILE on every new high, so it survives SIGTERM.
 *
 * The split is taken at the RSS peak, not as peaks of each part: the parts peak at different
 * times, and what matters is what the VmHWM was made of.
 */
import { writeFileSync } from 'node:fs';

export interface MemorySplit {
  rssMb: number;
  heapMb: number;
  externalMb: number;
  /** rss − heap − external: what V8 does not account for. */
  otherMb: number;
  atMs: number;
}

const file = process.env.BENCH_MEMORY_SPLIT_FILE;
if (file) {
  const started = Date.now();
  let peak = 0;
  const mb = (bytes: number): number => Math.round(bytes / 2 ** 20);
  setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss <= peak) return;
    peak = m.rss;
    const split: MemorySplit = {
      rssMb: mb(m.rss),
      heapMb: mb(m.heapTotal),
      externalMb: mb(m.external),
      otherMb: mb(m.rss - m.heapTotal - m.external),
      atMs: Date.now() - started,
    };
    writeFileSync(file, JSON.stringify(split));
  }, 100).unref();
}
