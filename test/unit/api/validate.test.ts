import { validateSyncRequest } from '../../../src/api/validate';
import { notEnrolledMessage, sunbirdTimestamp } from '../../../src/api/envelope';

describe('validateSyncRequest', () => {
  test('accepts one id or a list; collectionId stands in for courseId', () => {
    expect(validateSyncRequest({ request: { userId: 'u', batchId: 'b', courseId: 'c' } }, 10)).toEqual({
      ok: true,
      value: { courseId: 'c', batchId: 'b', userIds: ['u'] },
    });
    expect(validateSyncRequest({ request: { userId: ['u', 'v', 'u'], batchId: 'b', collectionId: 'c' } }, 10)).toEqual({
      ok: true,
      value: { courseId: 'c', batchId: 'b', userIds: ['u', 'v'] },
    });
  });

  test('courseId and collectionId that disagree are refused', () => {
    const r = validateSyncRequest({ request: { userId: 'u', batchId: 'b', courseId: 'c', collectionId: 'd' } }, 10);
    expect(r).toMatchObject({ ok: false, failure: { field: 'collectionId', err: 'INVALID_PARAMETER_VALUE' } });
  });

  test('the cap counts distinct users', () => {
    expect(validateSyncRequest({ request: { userId: ['a', 'b', 'c'], batchId: 'b', courseId: 'c' } }, 2)).toMatchObject(
      {
        ok: false,
        failure: { field: 'userId', err: 'TOO_MANY_USERS' },
      },
    );
  });
});

describe('envelope helpers', () => {
  test('timestamp in the design’s format', () => {
    expect(sunbirdTimestamp(new Date(Date.UTC(2021, 2, 4, 5, 58, 4, 382)))).toBe('2021-03-04 05:58:04:382+0000');
  });
  test('not-enrolled message quotes every id, as the design shows', () => {
    expect(notEnrolledMessage(['a', 'b'], 'B', 'C')).toBe(
      "Could not find any enrollments for userId ['a', 'b'], batchId 'B' and courseId 'C'",
    );
    expect(notEnrolledMessage([''], '', '')).toBe(
      "Could not find any enrollments for userId [''], batchId '' and courseId ''",
    );
  });
});
