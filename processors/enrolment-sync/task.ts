import type { RangeProgress } from '../../src/cassandra/enrolments';
import { SyncError } from '../../src/errors';
import type { SyncTrigger } from './trigger';

/**
 * A share of a whole-batch scan: the trigger it belongs to and the token ranges to read. A big
 * trigger is split into these, written to the task topic in the transaction that finishes the
 * trigger; every member of the group expands the tasks of the partitions it owns.
 */
export interface SyncTask {
  kind: 'task';
  triggerId: string;
  index: number;
  count: number;
  courseId: string;
  batchId: string;
  requestedBy: string;
  requestedAt: number;
  source: string;
  includeInactive: boolean | null;
  includeCompleted: boolean | null;
  plan: 'scan' | 'index';
  ranges: RangeProgress[];
}

export function isTask(input: SyncTrigger | SyncTask): input is SyncTask {
  return (input as SyncTask).kind === 'task';
}

/** Tasks are written by us; one that does not parse is a bug or tampering: dead-letter it. */
export function parseTask(value: unknown): SyncTask {
  const t = value as Partial<SyncTask>;
  const ok =
    t.kind === 'task' &&
    typeof t.triggerId === 'string' &&
    Number.isInteger(t.index) &&
    Number.isInteger(t.count) &&
    typeof t.courseId === 'string' &&
    typeof t.batchId === 'string' &&
    (t.plan === 'scan' || t.plan === 'index') &&
    Array.isArray(t.ranges) &&
    t.ranges.every((r) => typeof r?.start === 'string' && typeof r?.end === 'string');
  if (!ok) throw new SyncError('SYNC_BAD_TRIGGER', 'malformed task record', { retriable: false });
  return t as SyncTask;
}

function span(r: RangeProgress): bigint {
  return BigInt(r.end) - BigInt(r.start);
}

/** How much of `initial` is still in `remaining`, as the share done (0…1), by token span. */
export function shareDone(initial: readonly RangeProgress[], remaining: readonly RangeProgress[]): number {
  const total = initial.reduce((n, r) => n + span(r), 0n);
  if (total <= 0n) return 1;
  const left = remaining.reduce((n, r) => n + span(r), 0n);
  return Math.min(1, Math.max(0, 1 - Number((left * 1_000_000n) / total) / 1_000_000));
}

/**
 * Splits the ranges still to read into `tasks` groups of contiguous pieces of about equal token
 * span. Pieces are first cut at the ring's ownership boundaries (`ring`, the start tokens of the
 * ranges the nodes own), so a task's reads stay on few replicas, then halved until there are at
 * least `piecesPerTask` per task, so each task can read several ranges at once.
 */
export function splitForTasks(
  ranges: readonly RangeProgress[],
  ring: readonly bigint[],
  tasks: number,
  piecesPerTask: number,
): RangeProgress[][] {
  let pieces: RangeProgress[] = [];
  for (const r of ranges) {
    const start = BigInt(r.start);
    const end = BigInt(r.end);
    const cuts = ring.filter((t) => t > start && t < end).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let from = start;
    for (const [i, cut] of [...cuts, end].entries()) {
      pieces.push({ start: from.toString(), end: cut.toString(), ...(i === 0 && r.skip ? { skip: r.skip } : {}) });
      from = cut;
    }
  }
  const want = Math.max(1, tasks) * Math.max(1, piecesPerTask);
  while (pieces.length < want) {
    const widest = pieces.reduce((w, p, i) => (span(p) > span(pieces[w] as RangeProgress) ? i : w), 0);
    const p = pieces[widest] as RangeProgress;
    if (span(p) < 2n) break;
    const mid = BigInt(p.start) + span(p) / 2n;
    pieces = [
      ...pieces.slice(0, widest),
      { ...p, end: mid.toString() },
      { start: mid.toString(), end: p.end },
      ...pieces.slice(widest + 1),
    ];
  }
  const total = pieces.reduce((n, p) => n + span(p), 0n);
  const groups: RangeProgress[][] = [];
  let current: RangeProgress[] = [];
  let acc = 0n;
  for (const p of pieces) {
    current.push(p);
    acc += span(p);
    const boundary = (total * BigInt(groups.length + 1)) / BigInt(Math.max(1, tasks));
    if (acc >= boundary && groups.length < tasks - 1) {
      groups.push(current);
      current = [];
    }
  }
  if (current.length > 0) groups.push(current);
  return groups;
}
