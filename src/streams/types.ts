import type { RecordHeaders } from '../kafka/ports';
import type { Logger } from '../observability/logger';

export interface InputMessage {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
}

export interface OutputRecord {
  key: string | Buffer | null;
  value: Buffer | string;
  headers?: Record<string, string>;
  /** Only for spawned inputs, which choose their task-topic partition. */
  partition?: number;
}

/**
 * What a processor sees: never a Kafka client. The runtime owns producing, commits, retries,
 * heartbeats and the dead-letter topic.
 */
export interface ProcessContext {
  log: Logger;
  /** Aborted when the partition is revoked or the runtime stops: stop at the next chunk. */
  signal: AbortSignal;
  message: InputMessage;
  /** A position an earlier chunk of this same input reported: continue right after it. */
  resumeFrom?: unknown;
}

/** Output of one step of an input, and where the input stands after it. */
export interface OutputChunk {
  records: OutputRecord[];
  /**
   * Exactly where the input stands after these records, as plain JSON. The runtime commits it as
   * the checkpoint together with the records, and hands it back as `resumeFrom` after a crash.
   */
  position: unknown;
  /** Source rows read for these records (some rows yield no record). */
  rowsRead: number;
  /**
   * Follow-up inputs for the runtime's task topic (with their partition), committed in the same
   * transaction as this chunk: how one large input is split over the whole consumer group.
   */
  spawn?: OutputRecord[];
  /** Share of the input done after this chunk, 0…1, when the processor can tell. */
  progress?: number;
  /** Facts for the input's status (task count, plan, the trigger it joined); kept across resumes. */
  note?: Record<string, unknown>;
}

/** Which status record an input reports to: its trigger and its part of it. */
export interface StatusIdentity {
  triggerId: string;
  part: 'trigger' | `task:${number}`;
  /** Facts shown in the status from the start (course, batch, who asked). */
  fields?: Record<string, unknown>;
}

/**
 * A processor turns one input message into a stream of output chunks. Each chunk is taken only
 * after the one before it is handed to the sink (backpressure); a checkpoint falls between
 * chunks, never inside one.
 */
export interface StreamProcessor<I> {
  readonly name: string;
  /** Throws a non-retriable error for poison input (it goes to the dead-letter topic). */
  decode(message: InputMessage): Promise<I>;
  process(input: I, ctx: ProcessContext): AsyncIterable<OutputChunk>;
  /**
   * Inputs that expand to a handful of records (one user, a short list). The runtime expands
   * consecutive small inputs together and lets their records share produce requests.
   */
  isSmall?(input: I): boolean;
  /** Log fields naming this input. */
  describe(input: I): Record<string, unknown>;
  /** Where this input's progress is reported; without it the runtime writes no status. */
  statusOf?(input: I): StatusIdentity;
  /**
   * For input that could not be decoded: the status it should report its failure to, if the raw
   * message names one (an upstream trigger with a triggerId but a bad field).
   */
  statusOfUndecodable?(message: InputMessage): StatusIdentity | undefined;
}
