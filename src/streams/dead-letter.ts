import type { IHeaders, Message } from 'kafkajs';
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
