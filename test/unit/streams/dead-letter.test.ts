import { SyncError } from '../../../src/errors';
import { deadLetterRecord, DEAD_LETTER_HEADERS, fitDeadLetter } from '../../../src/streams/dead-letter';

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

describe('a dead letter too large for the broker', () => {
  const source = {
    topic: 'in',
    partition: 0,
    offset: '9',
    timestamp: '1',
    key: Buffer.from('k'),
    value: Buffer.alloc(3_000_000, 'x'),
    headers: { trace: 'abc' },
  };

  test('is cut to fit, says how big it was, and keeps every dlq header', () => {
    const record = deadLetterRecord(
      source,
      new SyncError('SYNC_BAD_TRIGGER', 'too big', { retriable: false }),
      'p',
      new Date(),
    );
    const fitted = fitDeadLetter(record, 100_000);
    expect((fitted.value as Buffer).length).toBeLessThan(100_000);
    expect((fitted.value as Buffer).length).toBeGreaterThan(90_000);
    expect(fitted.headers?.[DEAD_LETTER_HEADERS.truncated]).toBe('3000000');
    expect(fitted.headers?.[DEAD_LETTER_HEADERS.code]).toBe('SYNC_BAD_TRIGGER');
    expect(fitted.headers?.trace).toBe('abc');
  });

  test('drops original headers that alone are too big, and says so', () => {
    const huge = { ...source, value: Buffer.from('{}'), headers: { blob: Buffer.alloc(200_000, 'h') } };
    const record = deadLetterRecord(huge, new Error('x'), 'p', new Date());
    const fitted = fitDeadLetter(record, 100_000);
    expect(fitted.headers?.blob).toBeUndefined();
    expect(fitted.headers?.[DEAD_LETTER_HEADERS.headersDropped]).toBe('true');
    expect(fitted.headers?.[DEAD_LETTER_HEADERS.offset]).toBe('9');
  });

  test('is left alone when it fits', () => {
    const small = deadLetterRecord({ ...source, value: Buffer.from('{}') }, new Error('x'), 'p', new Date());
    expect(fitDeadLetter(small, 100_000)).toBe(small);
  });
});
