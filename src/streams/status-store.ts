import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from '../observability/logger';
import { CompactedTable } from './compacted-table';
import {
  decodeStatusPart,
  foldStatus,
  statusPartition,
  triggerIdOfKey,
  type StatusPart,
  type TriggerStatus,
} from './status';

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

  constructor(
    kafka: Kafka,
    private readonly admin: Admin,
    readonly topic: string,
    log: Logger,
    groupPrefix: string,
    private readonly maxTriggers = 200_000,
    private readonly maxEventsPerSecond?: number,
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
    await this.table.caughtUp(statusPartition(triggerId, this.partitions), signal);
    return this.fold(triggerId);
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

  private fold(triggerId: string): TriggerStatus | undefined {
    const parts = this.byTrigger.get(triggerId);
    return parts ? foldStatus(triggerId, [...parts.values()], Date.now(), this.maxEventsPerSecond) : undefined;
  }

  private index(key: string, part: StatusPart | undefined): void {
    const triggerId = part?.triggerId ?? triggerIdOfKey(key);
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
    for (const [key, part] of parts ?? []) {
      this.table.forget(key);
      if ('courseId' in part && part.courseId !== undefined) {
        this.wholeBatch.get(`${part.courseId}|${part.batchId}`)?.delete(oldest);
      }
    }
  }
}
