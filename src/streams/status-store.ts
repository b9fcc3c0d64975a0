import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from '../observability/logger';
import { sleep } from '../util/async';
import { CompactedTable } from './compacted-table';
import {
  decodeStatusPart,
  foldStatus,
  isFinished,
  statusPartition,
  triggerIdOfKey,
  type StatusPart,
  type TriggerState,
  type TriggerStatus,
} from './status';

/** How long an unknown trigger id is looked for before it is called unknown (see get()). */
const UNKNOWN_STATUS_GRACE_MS = 300;

export interface StatusListQuery {
  /** Only triggers in these states (all states when left out or empty). */
  states?: readonly TriggerState[];
  /** At most this many, newest first. */
  limit: number;
}

/**
 * The status topic read back as a table, with the parts of each trigger kept together, so any
 * processor or API instance answers for any trigger. A query first waits until the reader has
 * everything committed to that trigger's partition: what was just written is always seen.
 * Memory is bounded: the oldest triggers beyond `maxTriggers` are forgotten locally (the topic
 * itself keeps them for its retention).
 */
export class StatusStore {
  private readonly table: CompactedTable<StatusPart>;
  private readonly byTrigger = new Map<string, Map<string, StatusPart>>();
  /** Whole-batch triggers by `courseId|batchId`, for coalescing. */
  private readonly wholeBatch = new Map<string, Set<string>>();
  private partitions = 1;
  /** Triggers that may still change state: touched since they were last seen unfinished. */
  private readonly open = new Set<string>();
  /** Finished triggers by when they finished; the newest `maxFinished` are kept for listing. */
  private readonly finished = new Map<string, number>();

  constructor(
    kafka: Kafka,
    private readonly admin: Admin,
    readonly topic: string,
    log: Logger,
    groupPrefix: string,
    private readonly maxTriggers = 200_000,
    private readonly maxEventsPerSecond?: number,
    private readonly maxFinished = 1000,
  ) {
    this.table = new CompactedTable(kafka, admin, topic, decodeStatusPart, log, groupPrefix, (key, part) =>
      this.index(key, part),
    );
  }

  get partitionCount(): number {
    return this.partitions;
  }

  async start(): Promise<void> {
    const [meta] = (await this.admin.fetchTopicMetadata({ topics: [this.topic] })).topics;
    this.partitions = meta?.partitions.length ?? 1;
    await this.table.start();
  }

  async stop(): Promise<void> {
    await this.table.stop();
  }

  async get(triggerId: string, signal?: AbortSignal): Promise<TriggerStatus | undefined> {
    const partition = statusPartition(triggerId, this.partitions);
    await this.table.caughtUp(partition, signal);
    let status = this.fold(triggerId);
    // A transaction's records become visible to read_committed readers once the broker has
    // written its commit markers, which it does after answering the commit: a status asked for
    // right after the request that wrote it (PATCH, then GET) could be past the last stable
    // offset still, and answered 404. An unknown id is looked for again for a short while.
    const deadline = Date.now() + UNKNOWN_STATUS_GRACE_MS;
    while (status === undefined && Date.now() < deadline) {
      await sleep(20, signal);
      await this.table.caughtUp(partition, signal);
      status = this.fold(triggerId);
    }
    return status;
  }

  /**
   * A whole-batch trigger of (courseId, batchId) that is running (or, with `includeAccepted`,
   * accepted and not yet started), if there is one.
   */
  async findRunning(
    courseId: string,
    batchId: string,
    signal?: AbortSignal,
    includeAccepted = true,
  ): Promise<TriggerStatus | undefined> {
    await this.table.caughtUp(undefined, signal);
    for (const triggerId of this.wholeBatch.get(`${courseId}|${batchId}`) ?? []) {
      const status = this.fold(triggerId);
      if (status?.state === 'running' || (includeAccepted && status?.state === 'accepted')) return status;
    }
    return undefined;
  }

  /**
   * Triggers running (and accepted) and recently finished, for the status page: the unfinished
   * first, then the finished, each newest first. Costs a fold of the unfinished triggers and of
   * the newest `maxFinished` finished ones, not of the whole table.
   */
  async list(query: StatusListQuery, signal?: AbortSignal): Promise<TriggerStatus[]> {
    await this.table.caughtUp(undefined, signal);
    const unfinished: TriggerStatus[] = [];
    for (const triggerId of this.open) {
      const status = this.fold(triggerId);
      if (status === undefined) {
        this.open.delete(triggerId);
        this.finished.delete(triggerId);
      } else if (isFinished(status.state)) {
        this.open.delete(triggerId);
        this.finished.set(triggerId, status.finishedAt ?? status.updatedAt ?? 0);
      } else {
        this.finished.delete(triggerId);
        unfinished.push(status);
      }
    }
    this.trimFinished();
    const wanted = (s: TriggerStatus) => !query.states?.length || query.states.includes(s.state);
    const since = (s: TriggerStatus) => s.startedAt ?? s.requestedAt ?? 0;
    const out = unfinished.filter(wanted).sort((a, b) => since(b) - since(a));
    const done = [...this.finished.entries()].sort((a, b) => b[1] - a[1]);
    for (const [triggerId] of done) {
      if (out.length >= query.limit) break;
      const status = this.fold(triggerId);
      if (status && wanted(status)) out.push(status);
    }
    return out.slice(0, query.limit);
  }

  private trimFinished(): void {
    if (this.finished.size <= this.maxFinished) return;
    const oldestFirst = [...this.finished.entries()].sort((a, b) => a[1] - b[1]);
    for (const [triggerId] of oldestFirst.slice(0, this.finished.size - this.maxFinished)) {
      this.finished.delete(triggerId);
    }
  }

  private fold(triggerId: string): TriggerStatus | undefined {
    const parts = this.byTrigger.get(triggerId);
    return parts ? foldStatus(triggerId, [...parts.values()], Date.now(), this.maxEventsPerSecond) : undefined;
  }

  private index(key: string, part: StatusPart | undefined): void {
    const triggerId = part?.triggerId ?? triggerIdOfKey(key);
    // Settled into running or finished at the next list().
    this.open.add(triggerId);
    let parts = this.byTrigger.get(triggerId);
    if (part === undefined) {
      parts?.delete(key);
      if (parts?.size === 0) this.byTrigger.delete(triggerId);
      return;
    }
    if (!parts) {
      parts = new Map();
      this.byTrigger.set(triggerId, parts);
      if (this.byTrigger.size > this.maxTriggers) this.evictOldest();
    }
    parts.set(key, part);
    const wholeBatch =
      (part.part === 'request' && part.users === null) || (part.part === 'trigger' && part.wholeBatch === true);
    if (wholeBatch && part.courseId !== undefined && part.batchId !== undefined) {
      const k = `${part.courseId}|${part.batchId}`;
      let set = this.wholeBatch.get(k);
      if (!set) this.wholeBatch.set(k, (set = new Set()));
      set.add(triggerId);
    }
  }

  private evictOldest(): void {
    const oldest = this.byTrigger.keys().next().value;
    if (oldest === undefined) return;
    const parts = this.byTrigger.get(oldest);
    this.byTrigger.delete(oldest);
    this.open.delete(oldest);
    this.finished.delete(oldest);
    for (const [key, part] of parts ?? []) {
      this.table.forget(key);
      if ('courseId' in part && part.courseId !== undefined) {
        this.wholeBatch.get(`${part.courseId}|${part.batchId}`)?.delete(oldest);
      }
    }
  }
}
