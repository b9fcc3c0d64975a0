import { SyncError } from '../../../src/errors';
import { deadLetterRecord, DEAD_LETTER_HEADERS } from '../../../src/streams/dead-letter';

test('a dead-letter record keeps the original bytes and headers and names the error and its source', () => {
  const value = Buffer.from([0, 1, 2, 255]);
  const record = deadLetterRecord(
    {
      topic: 'in',
      partition: 3,
      offset: '77',
      timestamp: '123',
      key: Buffer.from('k'),
      value,
      headers: { trace: 'abc' },
    },
    new SyncError('SYNC_BAD_TRIGGER', 'batchId is missing', { retriable: false, field: 'batchId' }),
    'enrolment-sync',
    new Date('2026-01-01T00:00:00Z'),
  );
  expect(record.value).toBe(value);
  expect(record.key?.toString()).toBe('k');
  expect(record.headers).toEqual({
    trace: 'abc',
    [DEAD_LETTER_HEADERS.code]: 'SYNC_BAD_TRIGGER',
    [DEAD_LETTER_HEADERS.message]: 'batchId is missing',
    [DEAD_LETTER_HEADERS.field]: 'batchId',
    [DEAD_LETTER_HEADERS.topic]: 'in',
    [DEAD_LETTER_HEADERS.partition]: '3',
    [DEAD_LETTER_HEADERS.offset]: '77',
    [DEAD_LETTER_HEADERS.processor]: 'enrolment-sync',
    [DEAD_LETTER_HEADERS.failedAt]: '2026-01-01T00:00:00.000Z',
  });
});
