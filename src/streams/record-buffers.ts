/**
 * Large buffers that output records are written into (a record's key and value are views into
 * one), handed out again once the producer no longer reads any record in them.
 *
 * Why: a 1,000,000-user expansion writes its events into 256 KB buffers, about one per 580
 * events. Given to the garbage collector, each stays allocated until a full collection finds
 * its (by then promoted) Buffer object: about 80 of them, 20 MB of malloc, at the processor's
 * peak (docs/benchmarks.md, "Memory (4)"). librdkafka copies a record when it is produced and
 * kafkajs is done with it when its send resolves, so a few buffers going round are enough.
 *
 * How a buffer goes round: the writer takes one, writes records into it and then lends it with
 * the number of records whose value is a view into it; whoever sends the records releases each
 * once the client will not read it again (the sink, after a successful send or flush). At zero
 * the buffer is free again. A record that is never released (its send failed, its unit was
 * aborted) keeps its buffer out of the pool for good, and the garbage collector has it as
 * before: releasing too little is safe, releasing a record twice is not.
 */

interface Loan {
  /** Records whose value is a view into this buffer and that were not released yet. */
  views: number;
  buffer: Buffer;
}

export interface RecordBufferStats {
  /** Buffers allocated, and buffers handed out again from the free list. */
  allocated: number;
  reused: number;
  free: number;
}

export class RecordBuffers {
  private readonly free: Buffer[] = [];
  // Keyed weakly: a buffer whose records are never released is collected with its entry.
  private readonly loans = new WeakMap<ArrayBufferLike, Loan>();
  private allocated = 0;
  private reused = 0;

  /**
   * @param bufferBytes the size of every buffer
   * @param maxFree how many free buffers are kept; more go to the garbage collector
   */
  constructor(
    readonly bufferBytes: number,
    private readonly maxFree: number,
  ) {}

  /** A buffer of bufferBytes, of its own (no other Buffer shares its memory), maybe used before. */
  take(): Buffer {
    const buffer = this.free.pop();
    if (buffer) {
      this.reused++;
      return buffer;
    }
    this.allocated++;
    // Slow: its own ArrayBuffer, so a record's value identifies the buffer it lives in.
    return Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  /** Once `records` record values have been written into `buffer` (taken here): it is free when all are released. */
  lend(buffer: Buffer, records: number): void {
    if (records <= 0) this.giveBack(buffer);
    else this.loans.set(buffer.buffer, { views: records, buffer });
  }

  /**
   * The client will not read these records again. Values not written into a lent buffer
   * (strings, small or foreign buffers) are ignored.
   */
  release(records: readonly { value: unknown }[]): void {
    // Records come in runs from the same buffer: one map lookup per run.
    let memory: ArrayBufferLike | undefined;
    let run = 0;
    for (const record of records) {
      const value = record.value;
      if (!Buffer.isBuffer(value)) continue;
      if (value.buffer === memory) {
        run++;
        continue;
      }
      if (memory !== undefined) this.releaseViews(memory, run);
      memory = value.buffer;
      run = 1;
    }
    if (memory !== undefined) this.releaseViews(memory, run);
  }

  stats(): RecordBufferStats {
    return { allocated: this.allocated, reused: this.reused, free: this.free.length };
  }

  private releaseViews(memory: ArrayBufferLike, views: number): void {
    const loan = this.loans.get(memory);
    if (!loan) return;
    loan.views -= views;
    if (loan.views > 0) return;
    this.loans.delete(memory);
    this.giveBack(loan.buffer);
  }

  private giveBack(buffer: Buffer): void {
    if (this.free.length < this.maxFree) this.free.push(buffer);
  }
}

/**
 * The process's pool: 256 KB buffers (a chunk of about 580 of our events), at most 32 free
 * (8 MB). The sync-event writer takes from it and the sinks release to it.
 */
export const recordBuffers = new RecordBuffers(256 * 1024, 32);
