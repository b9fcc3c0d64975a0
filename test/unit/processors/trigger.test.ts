import { parseTrigger } from '../../../processors/enrolment-sync/trigger';

const origin = { topic: 't', partition: 1, offset: '42', timestamp: '1700000000000' };

describe('parseTrigger', () => {
  test('an upstream trigger may be minimal: the rest is derived from where it sits', () => {
    expect(parseTrigger({ courseId: 'c', batchId: 'b' }, origin)).toEqual({
      triggerId: 't-1-42',
      courseId: 'c',
      batchId: 'b',
      userIds: null,
      requestedBy: 'upstream',
      requestedAt: 1700000000000,
      source: 'upstream',
      includeInactive: null,
      includeCompleted: null,
    });
  });

  test('userIds are deduplicated and kept in order', () => {
    expect(parseTrigger({ courseId: 'c', batchId: 'b', userIds: ['x', 'y', 'x'] }, origin).userIds).toEqual(['x', 'y']);
  });

  test.each([
    [null, undefined, /JSON object/],
    [[], undefined, /JSON object/],
    [{ batchId: 'b' }, 'courseId', /courseId is missing/],
    [{ courseId: 'c', batchId: '  ' }, 'batchId', /batchId must not be empty/],
    [{ courseId: 'c', batchId: 7 }, 'batchId', /batchId must be a string/],
    [{ courseId: 'c', batchId: 'b', userIds: [] }, 'userIds', /must not be empty/],
    [{ courseId: 'c', batchId: 'b', userIds: 'u1' }, 'userIds', /list/],
    [{ courseId: 'c', batchId: 'b', userIds: ['ok', ''] }, 'userIds[1]', /non-empty string/],
    [{ courseId: 'c', batchId: 'b', source: 'cron' }, 'source', /one of api, batch, upstream/],
    [{ courseId: 'c', batchId: 'b', requestedAt: 'yesterday' }, 'requestedAt', /epoch/],
    [{ courseId: 'c', batchId: 'b', includeInactive: 'yes' }, 'includeInactive', /true, false or null/],
    [{ courseId: 'x'.repeat(1025), batchId: 'b' }, 'courseId', /at most 1024/],
  ])('rejects %j naming %s', (value, field, message) => {
    try {
      parseTrigger(value, origin);
      throw new Error('expected a rejection');
    } catch (err) {
      expect((err as { code: string }).code).toBe('SYNC_BAD_TRIGGER');
      expect((err as { retriable: boolean }).retriable).toBe(false);
      expect((err as { field?: string }).field).toBe(field);
      expect((err as Error).message).toMatch(message);
    }
  });
});
