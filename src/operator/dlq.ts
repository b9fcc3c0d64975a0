import { randomUUID } from 'node:crypto';
import type { Admin, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { TASK_HEADER } from '../../processors/enrolment-sync';
import { parseRequestedAt } from '../../processors/enrolment-sync/trigger';
import { SyncError } from '../errors';
import { translateKafkaError } from '../kafka/client';
import type { ProducerClient, ProducerRecord } from '../kafka/ports';
import { readToEnd, type PartitionRange } from '../kafka/read-to-end';
import { DEAD_LETTER_HEADERS } from '../streams/dead-letter';

/**
 * The dead-letter topic as an operator sees it: `dlq list` reads it, `dlq replay` sends chosen
 * dead letters back to the topic they failed on. Pure parts (flags, filters, formatting, what a
 * replay sends) are separate from the two functions that talk to Kafka.
 */

/** Headers a replayed record carries, so a trigger that comes back can be traced to its dead letter. */
export const REPLAY_HEADERS = {
  topic: 'dlq.replayed.from.topic',
  partition: 'dlq.replayed.from.partition',
  offset: 'dlq.replayed.from.offset',
  at: 'dlq.replayed.at',
} as const;

/** A record of the dead-letter topic, with its dlq.* headers read. */
export interface DeadLetter {
  partition: number;
  offset: string;
  /** The record's timestamp: the original trigger's, which the dead letter keeps. */
  timestamp: number;
  /** When the processor gave up on it (dlq.failed.at), else the record's timestamp. */
  failedAt: number;
  code: string | undefined;
  reason: string | undefined;
  field: string | undefined;
  source: { topic: string; partition: number | undefined; offset: string | undefined } | undefined;
  processor: string | undefined;
  key: Buffer | null;
  value: Buffer | null;
  /** Every header, the original trigger's and ours, as text. */
  headers: Record<string, string>;
  /** The value's size before it was cut to fit the topic; set only when it was cut. */
  truncatedFrom: number | undefined;
  headersDropped: boolean;
}

/** Which dead letters a command is about; every criterion given must hold. */
export interface DlqSelection {
  codes: string[];
  fields: string[];
  /** failedAt ≥ since and < until, epoch ms. */
  since: number | undefined;
  until: number | undefined;
  partition: number | undefined;
  /** Offsets within each partition read, inclusive. */
  fromOffset: bigint | undefined;
  toOffset: bigint | undefined;
  /** Explicit dead letters; a partition left out means the only partition (or --partition). */
  offsets: Array<{ partition: number | undefined; offset: bigint }>;
  limit: number;
}

export const DEFAULT_VALUE_BYTES = 80;

export type DlqFlags = Record<string, string | boolean | string[] | undefined>;

function badFlag(flag: string, message: string): SyncError {
  return new SyncError('SYNC_BAD_REQUEST', `--${flag} ${message}`, { retriable: false, field: flag });
}

function list(flags: DlqFlags, flag: string): string[] {
  const raw = flags[flag];
  const items = raw === undefined || typeof raw === 'boolean' ? [] : Array.isArray(raw) ? raw : [raw];
  return items
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function single(flags: DlqFlags, flag: string): string | undefined {
  const values = list(flags, flag);
  if (values.length > 1) throw badFlag(flag, `may be given once, got ${values.map((v) => `'${v}'`).join(', ')}`);
  if (flags[flag] !== undefined && values.length === 0) throw badFlag(flag, 'must not be empty');
  return values[0];
}

function wholeNumber(flags: DlqFlags, flag: string, min: number): number | undefined {
  const raw = single(flags, flag);
  if (raw === undefined) return undefined;
  if (!/^\d{1,15}$/.test(raw) || Number(raw) < min)
    throw badFlag(flag, `must be a whole number ≥ ${min}, got '${raw}'`);
  return Number(raw);
}

function offsetNumber(flags: DlqFlags, flag: string): bigint | undefined {
  const raw = single(flags, flag);
  if (raw === undefined) return undefined;
  if (!/^\d{1,19}$/.test(raw)) throw badFlag(flag, `must be an offset (a whole number ≥ 0), got '${raw}'`);
  return BigInt(raw);
}

const AGO = /^(\d{1,9})(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };

/** A point in time: ISO-8601, epoch ms, or a duration back from now (`30m`, `2h`, `7d`). */
export function parseTimeFlag(flag: string, raw: string, now: number): number {
  const ago = AGO.exec(raw.trim());
  if (ago) return now - Number(ago[1]) * (UNIT_MS[ago[2] as string] as number);
  const at = parseRequestedAt(raw);
  if (at === undefined) {
    throw badFlag(
      flag,
      `must be a time (ISO-8601 such as 2026-11-27T06:00:00Z, epoch ms, or 30m, 2h, 7d ago), got '${raw}'`,
    );
  }
  return at;
}

/** The selection flags shared by `dlq list` and `dlq replay`, checked once; a bad one is named. */
export function parseSelection(flags: DlqFlags, now: number): DlqSelection {
  const sinceRaw = single(flags, 'since');
  const untilRaw = single(flags, 'until');
  const since = sinceRaw === undefined ? undefined : parseTimeFlag('since', sinceRaw, now);
  const until = untilRaw === undefined ? undefined : parseTimeFlag('until', untilRaw, now);
  if (since !== undefined && until !== undefined && until <= since) {
    throw badFlag(
      'until',
      `(${new Date(until).toISOString()}) must be later than --since (${new Date(since).toISOString()})`,
    );
  }
  const fromOffset = offsetNumber(flags, 'from-offset');
  const toOffset = offsetNumber(flags, 'to-offset');
  if (fromOffset !== undefined && toOffset !== undefined && toOffset < fromOffset) {
    throw badFlag('to-offset', `(${toOffset}) must not be below --from-offset (${fromOffset})`);
  }
  const offsets = list(flags, 'offset').map((item) => {
    const m = /^(?:(\d{1,9}):)?(\d{1,19})$/.exec(item);
    if (!m) throw badFlag('offset', `must be OFFSET or PARTITION:OFFSET (as dlq list prints), got '${item}'`);
    return { partition: m[1] === undefined ? undefined : Number(m[1]), offset: BigInt(m[2] as string) };
  });
  return {
    codes: list(flags, 'code'),
    fields: list(flags, 'field'),
    since,
    until,
    partition: wholeNumber(flags, 'partition', 0),
    fromOffset,
    toOffset,
    offsets,
    limit: wholeNumber(flags, 'limit', 1) ?? Number.MAX_SAFE_INTEGER,
  };
}

/** Fills in the partition of bare --offset values, once the topic's partitions are known. */
export function resolveOffsets(selection: DlqSelection, partitions: readonly number[]): DlqSelection {
  const offsets = selection.offsets.map(({ partition, offset }) => {
    let p = partition ?? selection.partition;
    if (p === undefined) {
      if (partitions.length !== 1) {
        throw badFlag(
          'offset',
          `${offset} is ambiguous: the topic has ${partitions.length} partitions; write PARTITION:OFFSET or add --partition`,
        );
      }
      p = partitions[0] as number;
    }
    if (!partitions.includes(p)) throw badFlag('offset', `${p}:${offset}: the topic has no partition ${p}`);
    if (selection.partition !== undefined && p !== selection.partition) {
      throw badFlag('offset', `${p}:${offset} is not in --partition ${selection.partition}`);
    }
    return { partition: p, offset };
  });
  if (selection.partition !== undefined && !partitions.includes(selection.partition)) {
    throw badFlag('partition', `${selection.partition}: the topic has partitions ${partitions.join(', ')}`);
  }
  return { ...selection, offsets };
}

function headerText(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = (Array.isArray(value) ? value : [value]).map((v) => v.toString()).join(',');
  }
  return out;
}

function optionalInt(text: string | undefined): number | undefined {
  return text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

/** Reads a record of the dead-letter topic; any record will do, headers or not. */
export function toDeadLetter(
  partition: number,
  message: Pick<KafkaMessage, 'offset' | 'timestamp' | 'key' | 'value' | 'headers'>,
): DeadLetter {
  const headers = headerText(message.headers);
  const timestamp = Number(message.timestamp);
  const failedText = headers[DEAD_LETTER_HEADERS.failedAt];
  const failed = failedText === undefined ? NaN : Date.parse(failedText);
  const sourceTopic = headers[DEAD_LETTER_HEADERS.topic];
  return {
    partition,
    offset: message.offset,
    timestamp,
    failedAt: Number.isFinite(failed) ? failed : timestamp,
    code: headers[DEAD_LETTER_HEADERS.code],
    reason: headers[DEAD_LETTER_HEADERS.message],
    field: headers[DEAD_LETTER_HEADERS.field],
    source:
      sourceTopic === undefined
        ? undefined
        : {
            topic: sourceTopic,
            partition: optionalInt(headers[DEAD_LETTER_HEADERS.partition]),
            offset: headers[DEAD_LETTER_HEADERS.offset],
          },
    processor: headers[DEAD_LETTER_HEADERS.processor],
    key: message.key ?? null,
    value: message.value ?? null,
    headers,
    truncatedFrom: optionalInt(headers[DEAD_LETTER_HEADERS.truncated]),
    headersDropped: headers[DEAD_LETTER_HEADERS.headersDropped] === 'true',
  };
}

/** Whether a dead letter is chosen by the filters (the offset range is applied while reading). */
export function selects(selection: DlqSelection, dl: DeadLetter): boolean {
  const offset = BigInt(dl.offset);
  if (selection.partition !== undefined && dl.partition !== selection.partition) return false;
  if (selection.fromOffset !== undefined && offset < selection.fromOffset) return false;
  if (selection.toOffset !== undefined && offset > selection.toOffset) return false;
  if (
    selection.offsets.length > 0 &&
    !selection.offsets.some((o) => o.partition === dl.partition && o.offset === offset)
  ) {
    return false;
  }
  if (selection.codes.length > 0 && !selection.codes.includes(dl.code ?? '')) return false;
  if (selection.fields.length > 0 && !selection.fields.includes(dl.field ?? '')) return false;
  if (selection.since !== undefined && dl.failedAt < selection.since) return false;
  if (selection.until !== undefined && dl.failedAt >= selection.until) return false;
  return true;
}

// Characters a terminal would act on rather than show: controls, format characters (bidi
// overrides among them), line and paragraph separators, private-use and unassigned code points.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}]/u;
const ESCAPES: Record<number, string> = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r', 0x5c: '\\\\' };

function utf8Length(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/**
 * Bytes as one line of text safe to print: valid UTF-8 that a terminal shows is kept, everything
 * else is escaped (\n, \t, \\, \xNN for a byte that is not UTF-8, \u{…} for a control or
 * invisible character), so a dead letter can neither break the one-line-per-record output nor
 * move the cursor, and two different values never print the same. At most `maxBytes` are shown.
 */
export function printable(bytes: Buffer | string, maxBytes = Number.POSITIVE_INFINITY, quote?: string): string {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  const end = Math.min(buf.length, maxBytes);
  let out = '';
  let i = 0;
  while (i < end) {
    const b = buf[i] as number;
    if (b < 0x80) {
      const escape = ESCAPES[b];
      if (escape) out += escape;
      else if (quote !== undefined && b === quote.charCodeAt(0)) out += `\\${quote}`;
      else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
      else out += `\\x${b.toString(16).padStart(2, '0')}`;
      i++;
      continue;
    }
    const n = utf8Length(b);
    let valid = n > 0 && i + n <= end;
    for (let k = 1; valid && k < n; k++) valid = ((buf[i + k] as number) & 0xc0) === 0x80;
    const char = valid ? buf.toString('utf8', i, i + n) : '';
    // toString turns overlong forms and surrogates into U+FFFD: those bytes are escaped instead.
    if (valid && !char.includes('\ufffd') && [...char].length === 1) {
      out += UNPRINTABLE.test(char) ? `\\u{${(char.codePointAt(0) as number).toString(16)}}` : char;
      i += n;
    } else {
      out += `\\x${b.toString(16).padStart(2, '0')}`;
      i++;
    }
  }
  return out;
}

/** Why a dead letter cannot be replayed as it is, or undefined when it can. */
export function replayRefusal(dl: DeadLetter): string | undefined {
  if (dl.truncatedFrom !== undefined) {
    return `its value was cut to ${dl.value?.length ?? 0} of ${dl.truncatedFrom} bytes to fit the dead-letter topic; the original is not whole`;
  }
  if (dl.headersDropped) return 'its original headers were dropped to fit the dead-letter topic';
  return undefined;
}

export interface ReplayTarget {
  triggerTopic: string;
  taskTopic: string;
  /** The task topic's partitions: a task goes back to the partition it came from when it exists. */
  taskPartitions: number;
}

/**
 * What a replay sends: the original key, value and headers (the dlq.* diagnosis is left behind,
 * so a replay that fails again is described afresh), and headers naming the dead letter. A task
 * (it carries the task header) goes back to the task topic; anything else to the trigger topic.
 */
export function replayRecord(
  dl: DeadLetter,
  deadLetterTopic: string,
  target: ReplayTarget,
  now: Date,
): { topic: string; message: ProducerRecord } {
  const ours = new Set<string>([...Object.values(DEAD_LETTER_HEADERS), ...Object.values(REPLAY_HEADERS)]);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(dl.headers)) if (!ours.has(name)) headers[name] = value;
  headers[REPLAY_HEADERS.topic] = deadLetterTopic;
  headers[REPLAY_HEADERS.partition] = String(dl.partition);
  headers[REPLAY_HEADERS.offset] = dl.offset;
  headers[REPLAY_HEADERS.at] = now.toISOString();
  const message: ProducerRecord = { key: dl.key, value: dl.value, headers };
  if (dl.headers[TASK_HEADER] !== undefined) {
    const p = dl.source?.partition;
    return {
      topic: target.taskTopic,
      message: p !== undefined && p < target.taskPartitions ? { ...message, partition: p } : message,
    };
  }
  return { topic: target.triggerTopic, message };
}

function describeSize(dl: DeadLetter): string {
  const bytes = dl.value?.length ?? 0;
  return dl.truncatedFrom === undefined ? `${bytes} B` : `${bytes} of ${dl.truncatedFrom} B, truncated`;
}

/** One line per dead letter: where it is, when and why it failed, where from, its first bytes. */
export function formatDeadLetter(dl: DeadLetter, valueBytes = DEFAULT_VALUE_BYTES): string {
  const source = dl.source
    ? `${printable(dl.source.topic)}/${dl.source.partition ?? '?'}@${printable(dl.source.offset ?? '?')}`
    : '-';
  const value = dl.value === null ? 'null' : printable(dl.value, valueBytes);
  const more = dl.value !== null && dl.value.length > valueBytes ? '…' : '';
  return [
    `${dl.partition}:${dl.offset}`,
    new Date(dl.failedAt).toISOString(),
    printable(dl.code ?? '-'),
    `field=${dl.field === undefined ? '-' : printable(dl.field)}`,
    `from=${source}`,
    `reason="${printable(dl.reason ?? '', Number.POSITIVE_INFINITY, '"')}"`,
    `value(${describeSize(dl)})=${value}${more}`,
  ].join('  ');
}

function bytesJson(bytes: Buffer | null): { bytes: number; text?: string; base64: string } | null {
  if (bytes === null) return null;
  let text: string | undefined;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    text = undefined; // not UTF-8: base64 only
  }
  return { bytes: bytes.length, ...(text === undefined ? {} : { text }), base64: bytes.toString('base64') };
}

/** The machine form of a dead letter (`--json`, one object a line). */
export function deadLetterJson(dl: DeadLetter): Record<string, unknown> {
  const refusal = replayRefusal(dl);
  return {
    id: `${dl.partition}:${dl.offset}`,
    partition: dl.partition,
    offset: dl.offset,
    failedAt: new Date(dl.failedAt).toISOString(),
    timestamp: new Date(dl.timestamp).toISOString(),
    code: dl.code ?? null,
    reason: dl.reason ?? null,
    field: dl.field ?? null,
    source: dl.source ?? null,
    processor: dl.processor ?? null,
    key: bytesJson(dl.key),
    value: bytesJson(dl.value),
    truncatedFrom: dl.truncatedFrom ?? null,
    headersDropped: dl.headersDropped,
    replayable: refusal === undefined,
    refusal: refusal ?? null,
    headers: dl.headers,
  };
}

export interface ReadOptions {
  /** Gives up (SYNC_TIMEOUT) when the end is not reached in this time (Kafka unreachable, say). */
  timeoutMs: number;
  groupPrefix: string;
}

/**
 * Reads the dead-letter topic read_committed, from the beginning (or --from-offset) up to the end
 * each partition had when the read began (its last stable offset: the records of a transaction
 * still open then are left out, not waited for), handing each selected dead letter to
 * `onDeadLetter`, and returns. An empty topic returns at once. Stops early after `limit`.
 */
export async function readDeadLetters(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  requested: DlqSelection,
  options: ReadOptions,
  onDeadLetter: (dl: DeadLetter) => void,
): Promise<{ selection: DlqSelection; scanned: number; matched: number }> {
  let offsets: Array<{ partition: number; high: string; low: string }>;
  try {
    const topics = await admin.listTopics();
    if (!topics.includes(topic)) {
      throw new SyncError('SYNC_NOT_FOUND', `no topic ${topic} (check DEAD_LETTER_TOPIC and SYNC_ENV)`, {
        retriable: false,
        field: 'DEAD_LETTER_TOPIC',
      });
    }
    offsets = await admin.fetchTopicOffsets(topic);
  } catch (err) {
    throw translateKafkaError(err, `reading the offsets of ${topic}`);
  }
  const selection = resolveOffsets(
    requested,
    offsets.map((o) => o.partition),
  );
  // Per partition: what to read, its end (exclusive) fixed now.
  const ranges: PartitionRange[] = offsets.map((o) => {
    const wanted = selection.partition === undefined || selection.partition === o.partition;
    const explicit = selection.offsets.filter((x) => x.partition === o.partition).map((x) => x.offset);
    let from = BigInt(o.low);
    let to = BigInt(o.high);
    if (!wanted || (selection.offsets.length > 0 && explicit.length === 0)) to = from;
    if (selection.fromOffset !== undefined && selection.fromOffset > from) from = selection.fromOffset;
    if (selection.toOffset !== undefined && selection.toOffset + 1n < to) to = selection.toOffset + 1n;
    if (explicit.length > 0) {
      const lo = explicit.reduce((a, b) => (b < a ? b : a));
      const hi = explicit.reduce((a, b) => (b > a ? b : a)) + 1n;
      if (lo > from) from = lo;
      if (hi < to) to = hi;
    }
    return { partition: o.partition, from, to };
  });
  let scanned = 0;
  let matched = 0;
  try {
    await readToEnd(kafka, topic, ranges, {
      groupId: `${options.groupPrefix}.dlq.${randomUUID()}`,
      timeoutMs: options.timeoutMs,
      timeoutHint: 'is Kafka reachable? (--timeout-ms sets the wait)',
      onRecord: (partition, message) => {
        scanned++;
        const dl = toDeadLetter(partition, message);
        if (!selects(selection, dl)) return false;
        matched++;
        onDeadLetter(dl);
        return matched >= selection.limit;
      },
    });
  } catch (err) {
    throw translateKafkaError(err, `reading ${topic}`);
  }
  return { selection, scanned, matched };
}

/** kafkajs's default, which replays had before they went through the producer ports. */
const REPLAY_TRANSACTION_TIMEOUT_MS = 60000;

/**
 * Sends the dead letters back in one transaction: all of them or, if anything fails, none.
 * The transactional id is new for every run, so two operators replaying at once do not fence
 * each other; it starts with the consumer group, the prefix the processor's ids share. The
 * producer comes from the adapter KAFKA_CLIENT names, as the processor's and the API's do.
 */
export async function replayDeadLetters(
  producers: ProducerClient,
  deadLetters: readonly DeadLetter[],
  deadLetterTopic: string,
  target: ReplayTarget,
  groupId: string,
  now: Date = new Date(),
): Promise<Array<{ dl: DeadLetter; topic: string }>> {
  const records = deadLetters.map((dl) => ({ dl, ...replayRecord(dl, deadLetterTopic, target, now) }));
  if (records.length === 0) return [];
  const producer = producers.transactionalProducer({
    transactionalId: `${groupId}-dlq-replay-${randomUUID()}`,
    transactionTimeoutMs: REPLAY_TRANSACTION_TIMEOUT_MS,
  });
  try {
    await producer.open();
    await producer.begin();
    try {
      const byTopic = new Map<string, ProducerRecord[]>();
      for (const r of records) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r.message]);
      await producer.send([...byTopic].map(([topic, messages]) => ({ topic, messages })));
      await producer.commit();
    } catch (err) {
      await producer.abort().catch(() => undefined);
      throw err;
    }
  } catch (err) {
    throw translateKafkaError(err, `replaying dead letters from ${deadLetterTopic}`);
  } finally {
    await producer.close();
  }
  return records.map(({ dl, topic }) => ({ dl, topic }));
}
