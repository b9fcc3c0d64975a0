import { parseRequestedAt, parseTrigger } from '../../../processors/enrolment-sync/trigger';

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
    [
      { courseId: 'c', batchId: 'b', requestedAt: 'yesterday' },
      'requestedAt',
      /requestedAt must be epoch.*'yesterday'/,
    ],
    [{ courseId: 'c', batchId: 'b', requestedAt: true }, 'requestedAt', /got true/],
    [{ courseId: 'c', batchId: 'b', requestedAt: -5 }, 'requestedAt', /got -5/],
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

describe('requestedAt, as upstream services write it', () => {
  const at = 1614837484382; // 2021-03-04T05:58:04.382Z
  test.each([
    ['epoch ms, a number', at, at],
    ['epoch ms, a string of digits', String(at), at],
    ['epoch ms with a fraction (cut to whole ms)', at + 0.9, at],
    ['ISO-8601 in UTC', '2021-03-04T05:58:04.382Z', at],
    ['ISO-8601 with an offset', '2021-03-04T11:28:04.382+05:30', at],
    ['ISO-8601 with a compact offset', '2021-03-04T00:58:04.382-0500', at],
    ['ISO-8601 with an hours-only offset', '2021-03-04T06:58:04.382+01', at],
    ['ISO-8601 with microseconds (cut, not rounded)', '2021-03-04T05:58:04.382999Z', at],
    ['ISO-8601 with a comma before the fraction', '2021-03-04T05:58:04,382Z', at],
    ['ISO-8601 without an offset is UTC', '2021-03-04T05:58:04.382', at],
    ['ISO-8601 without seconds', '2021-03-04T05:58Z', at - 4382],
    ['ISO-8601 date only, midnight UTC', '2021-03-04', Date.UTC(2021, 2, 4)],
    ["Sunbird's form", '2021-03-04 05:58:04:382+0000', at],
    ["Sunbird's form in India", '2021-03-04 11:28:04:382+0530', at],
    ['surrounding spaces', '  2021-03-04T05:58:04.382Z ', at],
    ['a leap day', '2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['the epoch', 0, 0],
  ])('%s: %j', (_name, value, expected) => {
    expect(parseRequestedAt(value)).toBe(expected);
    const trigger = parseTrigger({ courseId: 'c', batchId: 'b', requestedAt: value }, origin);
    expect(trigger.requestedAt).toBe(expected);
  });

  test.each([
    ['words', 'yesterday'],
    ['empty', ''],
    ['a date with a slash', '2021/03/04'],
    ['no day of month 30 in February', '2021-02-30T00:00:00Z'],
    ['not a leap year', '2023-02-29'],
    ['hour 24', '2021-03-04T24:00:00Z'],
    ['minute 60', '2021-03-04T05:60:00Z'],
    ['month 13', '2021-13-04'],
    ['an offset of 25 hours', '2021-03-04T05:58:04+2500'],
    ['an offset without a time', '2021-03-04Z'],
    ['junk after the time', '2021-03-04T05:58:04.382Zjunk'],
    ['before 1970', '1969-12-31T23:59:59Z'],
    ['a two-digit year that Date.UTC would read as 19xx', '0099-01-01'],
    ['after year 9999', 253402300800000],
    ['negative', -1],
    ['not a number', Number.NaN],
    ['infinite', Number.POSITIVE_INFINITY],
    ['too many digits', '12345678901234567'],
    ['a boolean', true],
    ['an object', { at: 1 }],
    ['an array', [at]],
    ['an exponent', '1.6e12'],
  ])('refuses %s: %j', (_name, value) => {
    expect(parseRequestedAt(value)).toBeUndefined();
    expect(() => parseTrigger({ courseId: 'c', batchId: 'b', requestedAt: value }, origin)).toThrow(
      expect.objectContaining({ code: 'SYNC_BAD_TRIGGER', field: 'requestedAt' }),
    );
  });

  test("does not depend on the machine's time zone", () => {
    const tz = process.env.TZ;
    try {
      process.env.TZ = 'Asia/Kolkata';
      expect(parseRequestedAt('2021-03-04T05:58:04.382')).toBe(at);
      expect(parseRequestedAt('2021-03-04')).toBe(Date.UTC(2021, 2, 4));
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });
});
