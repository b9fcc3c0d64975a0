import type { ProducerRecord as Message } from '../kafka/ports';

/**
 * Trigger status, kept in a compacted topic and read back as a table. Each writer owns its own
 * keys, so nothing is ever read-modified-written: the request (API or CLI, when it publishes),
 * the trigger (the processor member that expands or fans it out) and each of its tasks (whichever
 * member owns the task's partition) write `<triggerId>|<part>`; a reader folds them into one
 * status. Parts are written in the same transaction as the work they report.
 */
export type PartState = 'running' | 'done' | 'failed';

export interface RequestPart {
  part: 'request';
  triggerId: string;
  courseId: string;
  batchId: string;
  users: number | null;
  requestedBy: string;
  requestedAt: number;
  source: string;
}

export interface WorkPart {
  part: 'trigger' | 'task';
  triggerId: string;
  /** Task index, for task parts. */
  index?: number;
  state: PartState;
  produced: number;
  rowsRead: number;
  /** Share of this part's work done, 0…1, when the reader can tell (token-range reads can). */
  progress?: number;
  startedAt: number;
  updatedAt: number;
  finishedAt?: number;
  error?: { code: string; message: string };
  /** Trigger parts: how many tasks it was split into (0: expanded by itself). */
  tasks?: number;
  /** Trigger parts: the running trigger this one joined instead of expanding the batch again. */
  joinedTo?: string;
  courseId?: string;
  batchId?: string;
  requestedBy?: string;
  requestedAt?: number;
  plan?: string;
  /** Trigger parts: a whole-batch trigger (the kind that coalesces). */
  wholeBatch?: boolean;
}

export type StatusPart = RequestPart | WorkPart;

export type TriggerState = 'accepted' | 'running' | 'done' | 'failed' | 'joined';

export interface TriggerStatus {
  triggerId: string;
  state: TriggerState;
  courseId?: string;
  batchId?: string;
  users?: number | null;
  requestedBy?: string;
  requestedAt?: number;
  source?: string;
  eventsProduced: number;
  rowsRead: number;
  tasks: { done: number; total: number };
  /** 0…1 where known. */
  progress?: number;
  startedAt?: number;
  updatedAt?: number;
  finishedAt?: number;
  eventsPerSecond?: number;
  /** Seconds to go at the current rate (or at the configured pace, whichever is slower). */
  etaSeconds?: number;
  error?: { code: string; message: string };
  joinedTo?: string;
  /**
   * Inputs of this trigger (the trigger itself, or its tasks) sent to the dead-letter topic. A
   * part turns 'failed' only in the transaction that dead-letters its input (partition-worker.ts),
   * so the failed parts are the dead letters.
   */
  deadLetters?: number;
}

/** States after which a trigger no longer changes. */
export const FINISHED_STATES: readonly TriggerState[] = ['done', 'failed', 'joined'];

export function isFinished(state: TriggerState): boolean {
  return FINISHED_STATES.includes(state);
}

export function statusKey(triggerId: string, part: 'request' | 'trigger' | `task:${number}`): string {
  return `${triggerId}|${part}`;
}

export function triggerIdOfKey(key: string): string {
  return key.slice(0, key.lastIndexOf('|'));
}

/** FNV-1a: all parts of a trigger land on one partition, so a reader waits on one partition only. */
export function statusPartition(triggerId: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < triggerId.length; i++) {
    hash ^= triggerId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % Math.max(1, partitions);
}

export function statusMessage(topicPartitions: number, key: string, part: StatusPart): Message {
  return { key, value: JSON.stringify(part), partition: statusPartition(part.triggerId, topicPartitions) };
}

export function decodeStatusPart(value: Buffer): StatusPart {
  const parsed = JSON.parse(value.toString('utf8')) as StatusPart;
  if (typeof parsed.triggerId !== 'string' || !['request', 'trigger', 'task'].includes(parsed.part)) {
    throw new Error('not a status record');
  }
  return parsed;
}

/** Folds a trigger's parts into its status. `now` and `maxEventsPerSecond` shape the ETA. */
export function foldStatus(
  triggerId: string,
  parts: readonly StatusPart[],
  now: number,
  maxEventsPerSecond?: number,
): TriggerStatus | undefined {
  if (parts.length === 0) return undefined;
  const request = parts.find((p): p is RequestPart => p.part === 'request');
  const trigger = parts.find((p): p is WorkPart => p.part === 'trigger');
  const tasks = parts.filter((p): p is WorkPart => p.part === 'task');
  const work = [trigger, ...tasks].filter((p): p is WorkPart => p !== undefined);
  const failed = work.find((p) => p.state === 'failed');
  const total = trigger?.tasks ?? 0;
  const done = tasks.filter((t) => t.state === 'done').length;

  let state: TriggerState;
  if (!trigger) state = 'accepted';
  else if (trigger.joinedTo !== undefined) state = 'joined';
  else if (failed) state = 'failed';
  else if (trigger.state === 'done' && done >= total) state = 'done';
  else state = 'running';

  const produced = work.reduce((n, p) => n + p.produced, 0);
  const rowsRead = work.reduce((n, p) => n + p.rowsRead, 0);
  const startedAt = work.length > 0 ? Math.min(...work.map((p) => p.startedAt)) : undefined;
  const updatedAt = work.length > 0 ? Math.max(...work.map((p) => p.updatedAt)) : undefined;
  const finishedAt =
    state === 'done' || state === 'failed' ? Math.max(...work.map((p) => p.finishedAt ?? p.updatedAt)) : undefined;

  // Progress: a fanned-out trigger is its tasks (equal shares of the ring); one that expands by
  // itself reports its own.
  let progress: number | undefined;
  if (state === 'done') progress = 1;
  else if (total > 0) {
    const byIndex = new Map(tasks.map((t) => [t.index ?? -1, t]));
    let sum = 0;
    for (let i = 0; i < total; i++) {
      const t = byIndex.get(i);
      sum += t === undefined ? 0 : t.state === 'done' ? 1 : (t.progress ?? 0);
    }
    progress = sum / total;
  } else if (trigger?.progress !== undefined) progress = trigger.progress;

  const end = finishedAt ?? now;
  const seconds = startedAt !== undefined ? Math.max(0.001, (end - startedAt) / 1000) : undefined;
  const eventsPerSecond = seconds !== undefined && produced > 0 ? Math.round(produced / seconds) : undefined;
  let etaSeconds: number | undefined;
  if (state === 'running' && progress !== undefined && progress > 0 && seconds !== undefined) {
    etaSeconds = (seconds * (1 - progress)) / progress;
    if (maxEventsPerSecond !== undefined && maxEventsPerSecond > 0) {
      const remainingEvents = (produced / progress) * (1 - progress);
      etaSeconds = Math.max(etaSeconds, remainingEvents / maxEventsPerSecond);
    }
    etaSeconds = Math.round(etaSeconds);
  }

  return {
    triggerId,
    state,
    courseId: request?.courseId ?? trigger?.courseId,
    batchId: request?.batchId ?? trigger?.batchId,
    users: request?.users,
    requestedBy: request?.requestedBy ?? trigger?.requestedBy,
    requestedAt: request?.requestedAt ?? trigger?.requestedAt,
    source: request?.source,
    eventsProduced: produced,
    rowsRead,
    tasks: { done, total },
    progress,
    startedAt,
    updatedAt,
    finishedAt,
    eventsPerSecond,
    etaSeconds,
    error: failed?.error,
    joinedTo: trigger?.joinedTo,
    deadLetters: work.filter((p) => p.state === 'failed').length,
  };
}
