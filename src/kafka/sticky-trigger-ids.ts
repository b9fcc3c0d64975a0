import { randomUUID } from 'node:crypto';
import { statusPartition } from '../streams/status';

export interface StickyTriggerIdOptions {
  /** Partitions of the trigger topic and of the status topic. */
  triggerPartitions: number;
  statusPartitions: number;
  /** How long the ids made stay on one partition before moving to the next (0: no stickiness). */
  windowMs: number;
  now?: () => number;
  newId?: () => string;
}

/**
 * Ids for the API's triggers, and the trigger partition each goes to: sticky partitioning
 * (Kafka's KIP-480) for records whose key is used once. A user-list trigger's key is its fresh
 * id, so which partition it lands on matters to nobody, but how many partitions a transaction
 * touches does: the broker writes a commit marker on each, and the processor commits one
 * transaction per input partition it has work on. So for `windowMs` every id this process makes
 * is drawn (a few random UUIDs, rejected until one fits) so that its trigger partition and its
 * status partition (src/streams/status.ts, what readers wait on) are the window's; then the
 * next partition's turn comes. An API send then writes one trigger partition and one status
 * partition, and the processor's wave of it writes one status partition, whatever the number of
 * triggers. The window's start is shifted by a random phase per process, so that API instances
 * do not all crowd one partition at once.
 */
export class StickyTriggerIds {
  private readonly modulus: number;
  private readonly phase: number;
  private readonly now: () => number;
  private readonly newId: () => string;

  constructor(private readonly options: StickyTriggerIdOptions) {
    const t = Math.max(1, options.triggerPartitions);
    const s = Math.max(1, options.statusPartitions);
    // One residue mod lcm(t, s) fixes both partitions; past a few hundred tries per id (topics
    // with unrelated partition counts) only the trigger partition is kept sticky.
    const lcm = (t / gcd(t, s)) * s;
    this.modulus = lcm <= MAX_TRIES ? lcm : t;
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? randomUUID;
    this.phase = Math.floor(Math.random() * Math.max(1, options.windowMs) * this.modulus);
  }

  /** A fresh trigger id on the current window's partition (any id when stickiness is off). */
  next(): string {
    if (this.options.windowMs <= 0 || this.modulus === 1) return this.newId();
    const target = Math.floor((this.now() + this.phase) / this.options.windowMs) % this.modulus;
    let id = this.newId();
    // Each try fits with probability 1 / modulus; the bound only guards against a bad hash.
    for (let tries = 1; statusPartition(id, this.modulus) !== target && tries < MAX_TRIES * 8; tries++) {
      id = this.newId();
    }
    return id;
  }

  /** The trigger partition of an id from next(): the same hash as its status partition. */
  partitionOf(triggerId: string): number {
    return statusPartition(triggerId, this.options.triggerPartitions);
  }
}

/** Above this many expected tries per id, the status partition is left to chance. */
const MAX_TRIES = 256;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
