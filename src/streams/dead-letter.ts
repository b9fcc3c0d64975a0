import type { RecordHeaders as IHeaders, ProducerRecord as Message } from '../kafka/ports';
import { errorCodeOf, isSyncError, messageOf } from '../errors';
import type { InputMessage } from './types';

/** Headers we add to a dead-lettered record; the original key, value and headers are kept. */
export const DEAD_LETTER_HEADERS = {
  code: 'dlq.error.code',
  message: 'dlq.error.message',
  field: 'dlq.error.field',
  topic: 'dlq.source.topic',
  partition: 'dlq.source.partition',
  offset: 'dlq.source.offset',
  processor: 'dlq.processor',
  failedAt: 'dlq.failed.at',
  truncated: 'dlq.truncated.original.bytes',
  headersDropped: 'dlq.original.headers.dropped',
} as const;

export function deadLetterRecord(message: InputMessage, err: unknown, processor: string, now: Date): Message {
  const headers: IHeaders = { ...message.headers };
  headers[DEAD_LETTER_HEADERS.code] = errorCodeOf(err);
  headers[DEAD_LETTER_HEADERS.message] = messageOf(err).slice(0, 2000);
  if (isSyncError(err) && err.field) headers[DEAD_LETTER_HEADERS.field] = err.field;
  headers[DEAD_LETTER_HEADERS.topic] = message.topic;
  headers[DEAD_LETTER_HEADERS.partition] = String(message.partition);
  headers[DEAD_LETTER_HEADERS.offset] = message.offset;
  headers[DEAD_LETTER_HEADERS.processor] = processor;
  headers[DEAD_LETTER_HEADERS.failedAt] = now.toISOString();
  return { key: message.key, value: message.value, headers, timestamp: message.timestamp };
}

function headerBytes(headers: IHeaders | undefined): number {
  let n = 0;
  for (const [k, v] of Object.entries(headers ?? {})) {
    n += Buffer.byteLength(k) + 16;
    for (const item of Array.isArray(v) ? v : [v])
      n += item === undefined ? 0 : Buffer.byteLength(item as string | Buffer);
  }
  return n;
}

function byteLength(value: Message['value'] | Message['key']): number {
  return value === null || value === undefined ? 0 : Buffer.byteLength(value);
}

/**
 * A dead letter the broker would refuse as too large would stop the partition for good, so it is
 * cut to fit: the value is truncated (a header keeps its original size), and if the original
 * headers alone are too big they are dropped (a header says so). The dlq.* headers always stay.
 */
export function fitDeadLetter(record: Message, maxBytes: number): Message {
  const overhead = 512;
  const size = (m: Message) => byteLength(m.key) + byteLength(m.value) + headerBytes(m.headers) + overhead;
  if (size(record) <= maxBytes) return record;
  let headers: IHeaders = { ...record.headers };
  const ours = new Set<string>(Object.values(DEAD_LETTER_HEADERS));
  if (headerBytes(headers) + byteLength(record.key) + overhead > maxBytes / 2) {
    headers = Object.fromEntries(Object.entries(headers).filter(([k]) => ours.has(k)));
    headers[DEAD_LETTER_HEADERS.headersDropped] = 'true';
  }
  const original = byteLength(record.value);
  const room = Math.max(0, maxBytes - byteLength(record.key) - headerBytes(headers) - overhead - 64);
  const value =
    record.value === null || record.value === undefined ? record.value : Buffer.from(record.value).subarray(0, room);
  if (original > room) headers[DEAD_LETTER_HEADERS.truncated] = String(original);
  return { ...record, value, headers };
}
