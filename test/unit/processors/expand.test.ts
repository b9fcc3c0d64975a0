import avro from 'avsc';
import { policyFor, shouldSync, toSyncRecords } from '../../../processors/enrolment-sync/expand';
import {
  buildSyncEvent,
  createSyncEventEncoder,
  syncEventJson,
  syncEventUuid,
  writeSyncEventsJson,
} from '../../../processors/enrolment-sync/sync-event';
import { parseTrigger } from '../../../processors/enrolment-sync/trigger';
import { syncEventAvroType } from '../../../src/schemas';

const clock = { now: () => 1614838059898, uuid: () => 'c7ba0267-d1fe-4443-a819-b0e8c06a44c2' };
/** Ids of every shape an encoder can trip on: quotes, escapes, controls, lone surrogates, huge, empty. */
const ODD_IDS = [
  'plain',
  `o'brien "q"`,
  'back\\slash',
  'ünï-用户-🎓',
  'tab\there',
  'nl\nx',
  '\u0000ctl',
  '</script>',
  ' ',
  'lone \ud800 high',
  '\udc00 lone low',
  'x'.repeat(70_000),
  '',
];
const trigger = parseTrigger(
  { courseId: 'course_id', batchId: 'batch_id' },
  { topic: 't', partition: 0, offset: '0', timestamp: '0' },
);

describe('sync events', () => {
  test('the event is the design’s, byte for byte', () => {
    const json = createSyncEventEncoder(
      syncEventAvroType(),
      'json',
    )(buildSyncEvent('course_id', 'batch_id', 'user_id', clock.now(), clock.uuid()));
    expect(json).toBe(
      '{"eid":"BE_JOB_REQUEST","ets":1614838059898,"mid":"LP.1614838059898.c7ba0267-d1fe-4443-a819-b0e8c06a44c2",' +
        '"actor":{"type":"System","id":"Course Batch Updater"},"context":{"pdata":{"ver":"1.0","id":"org.sunbird.platform"}},' +
        '"object":{"type":"CourseBatchEnrolment","id":"batch_id_user_id"},' +
        '"edata":{"action":"user-enrolment-sync","iteration":1,"batchId":"batch_id","userId":"user_id","courseId":"course_id"}}',
    );
  });

  test('an event that fails its schema is refused, never encoded', () => {
    const encode = createSyncEventEncoder(syncEventAvroType(), 'json');
    const bad = { ...buildSyncEvent('c', 'b', 'u', 1, 'x'), ets: 'now' } as unknown as Parameters<typeof encode>[0];
    expect(() => encode(bad)).toThrow(expect.objectContaining({ code: 'SYNC_INVALID_EVENT', field: 'ets' }));
  });

  test('Avro encoding frames the body with the schema id and decodes back', () => {
    const type = syncEventAvroType();
    const encode = createSyncEventEncoder(type, 'avro', (body) => Buffer.concat([Buffer.from([0, 0, 0, 0, 9]), body]));
    const event = buildSyncEvent('c', 'b', 'ü "u"', 5, 'id');
    const bytes = encode(event) as Buffer;
    expect(bytes.readUInt32BE(1)).toBe(9);
    expect(type.fromBuffer(bytes.subarray(5))).toEqual(event);
    expect(avro.Type.isType(type)).toBe(true);
  });
});

describe('enrolment policy', () => {
  const defaults = { includeInactive: false, includeCompleted: true };
  test('inactive skipped and completed kept by default; a trigger may override both', () => {
    expect(shouldSync({ userId: 'u', active: false, status: 1 }, defaults)).toBe(false);
    expect(shouldSync({ userId: 'u', active: null, status: 1 }, defaults)).toBe(true);
    expect(shouldSync({ userId: 'u', active: true, status: 2 }, defaults)).toBe(true);
    const override = policyFor({ ...trigger, includeInactive: true, includeCompleted: false }, defaults);
    expect(shouldSync({ userId: 'u', active: false, status: 1 }, override)).toBe(true);
    expect(shouldSync({ userId: 'u', active: true, status: 2 }, override)).toBe(false);
  });

  test('records are keyed by userId and only for rows the policy keeps', () => {
    const encode = createSyncEventEncoder(syncEventAvroType(), 'json');
    const records = toSyncRecords(
      trigger,
      [
        { userId: 'a', active: true, status: 1 },
        { userId: 'b', active: false, status: 1 },
        { userId: 'c', active: true, status: 2 },
      ],
      defaults,
      encode,
    );
    expect(records.map((r) => r.key?.toString())).toEqual(['a', 'c']);
    expect(JSON.parse(records[1]!.value as string).object.id).toBe('batch_id_c');
  });

  test('an event is a function of (trigger, user): ets is requestedAt, mid a name-based UUID', () => {
    const encode = createSyncEventEncoder(syncEventAvroType(), 'json');
    const row = { userId: 'u-1', active: true, status: 1 };
    const once = toSyncRecords(trigger, [row], defaults, encode)[0]!;
    const again = toSyncRecords(trigger, [row], defaults, encode)[0]!;
    expect(again.value).toEqual(once.value);
    const event = JSON.parse(once.value as string);
    expect(event.ets).toBe(trigger.requestedAt);
    expect(event.mid).toMatch(/^LP\.\d+\.[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const otherTrigger = JSON.parse(
      toSyncRecords({ ...trigger, triggerId: 'another' }, [row], defaults, encode)[0]!.value as string,
    );
    const otherUser = JSON.parse(
      toSyncRecords(trigger, [{ ...row, userId: 'u-2' }], defaults, encode)[0]!.value as string,
    );
    expect(otherTrigger.mid).not.toBe(event.mid);
    expect(otherUser.mid).not.toBe(event.mid);
  });

  test("the same instant written as epoch ms, ISO-8601 or Sunbird's form gives byte-identical events", () => {
    const encode = createSyncEventEncoder(syncEventAvroType(), 'json');
    const row = { userId: 'u-1', active: true, status: 1 };
    const origin = { topic: 't', partition: 0, offset: '7', timestamp: '0' };
    const forms = [1614837484382, '1614837484382', '2021-03-04T05:58:04.382Z', '2021-03-04 05:58:04:382+0000'];
    const values = forms.map((requestedAt) =>
      toSyncRecords(
        parseTrigger({ triggerId: 'tr', courseId: 'c', batchId: 'b', requestedAt }, origin),
        [row],
        defaults,
        encode,
      )[0]!.value.toString(),
    );
    expect(new Set(values).size).toBe(1);
    expect(JSON.parse(values[0] as string)).toMatchObject({
      ets: 1614837484382,
      mid: expect.stringMatching(/^LP\.1614837484382\./),
    });
  });

  test('the name-based UUID is RFC 9562 version 5 and keeps the two ids apart', () => {
    expect(syncEventUuid('t', 'u')).toBe(syncEventUuid('t', 'u'));
    // Without an unambiguous name, ("a|b", "c") and ("a", "b|c") could collide.
    expect(syncEventUuid('a|b', 'c')).not.toBe(syncEventUuid('a', 'b|c'));
    expect(syncEventUuid('ab', 'c')).not.toBe(syncEventUuid('a', 'bc'));
  });
});

describe('hand-written JSON', () => {
  test('is exactly JSON.stringify of the event, for ids of every shape', () => {
    for (const userId of ODD_IDS) {
      for (const batchId of ODD_IDS) {
        const event = buildSyncEvent(
          `course ${batchId}`,
          batchId,
          userId,
          1614838059898,
          'c7ba0267-d1fe-4443-a819-b0e8c06a44c2',
        );
        expect(syncEventJson(event)).toBe(JSON.stringify(event));
      }
    }
  });
});

describe('events written straight into buffers', () => {
  const expected = (t: { triggerId: string; courseId: string; batchId: string; requestedAt: number }, userId: string) =>
    Buffer.from(
      syncEventJson(buildSyncEvent(t.courseId, t.batchId, userId, t.requestedAt, syncEventUuid(t.triggerId, userId))),
    );

  test('are byte for byte the one-event encoding, key and value, for ids of every shape', () => {
    for (const batchId of ['batch_1', 'b "ü" \ud83c', '\\']) {
      const t = {
        triggerId: `trig "${batchId}" 🎓`,
        courseId: `course ${batchId}`,
        batchId,
        requestedAt: 1614838059898,
      };
      const out = writeSyncEventsJson(t, ODD_IDS);
      expect(out).toHaveLength(ODD_IDS.length);
      ODD_IDS.forEach((userId, i) => {
        expect(out[i]!.key.equals(Buffer.from(userId))).toBe(true);
        expect(out[i]!.value.toString()).toBe(expected(t, userId).toString());
        expect(out[i]!.value.equals(expected(t, userId))).toBe(true);
      });
    }
  });

  test('stay intact across many buffers: every event keeps its own bytes', () => {
    const t = { triggerId: 't-1', courseId: 'c', batchId: 'b', requestedAt: 5 };
    const userIds = Array.from({ length: 5000 }, (_, i) => `user-${i}-${'y'.repeat(i % 97)}`);
    const out = writeSyncEventsJson(t, userIds);
    expect(new Set(out.map((e) => e.value.buffer)).size).toBeGreaterThan(2);
    userIds.forEach((userId, i) => {
      expect(out[i]!.key.toString()).toBe(userId);
      expect(out[i]!.value.equals(expected(t, userId))).toBe(true);
    });
  });

  test('a chunk of a few users takes buffers of about its size, not a 256 KB one each', () => {
    const t = { triggerId: 't-3', courseId: 'c', batchId: 'b', requestedAt: 5 };
    for (const userIds of [
      ['u1'],
      ['ü-plain-and-escaped', 'u2', 'q"3'],
      Array.from({ length: 40 }, (_, i) => `user-${i}`),
    ]) {
      const out = writeSyncEventsJson(t, userIds);
      const bytes = out.reduce((n, e) => n + e.key.length + e.value.length, 0);
      const buffers = new Set(out.map((e) => e.value.buffer));
      const held = [...buffers].reduce((n, b) => n + b.byteLength, 0);
      // Node's shared pool (Buffer.poolSize) or one buffer of at most 3 × what the events take.
      expect(held).toBeLessThanOrEqual(Math.max(Buffer.poolSize, 3 * bytes));
      userIds.forEach((userId, i) => expect(out[i]!.value.equals(expected(t, userId))).toBe(true));
    }
  });

  test('plain and escaped ids mixed, across many buffers, keep their own bytes', () => {
    const t = { triggerId: 't-2', courseId: 'c', batchId: 'b', requestedAt: 5 };
    const shapes = [
      (i: number) => `u${i}`,
      (i: number) => `ü-${i}`,
      (i: number) => `q"${i}\\`,
      (i: number) => `~${i}\u007f`,
    ];
    const userIds = Array.from(
      { length: 6000 },
      (_, i) => (shapes[i % shapes.length] as (i: number) => string)(i) + 'z'.repeat(i % 89),
    );
    const out = writeSyncEventsJson(t, userIds);
    expect(new Set(out.map((e) => e.value.buffer)).size).toBeGreaterThan(2);
    userIds.forEach((userId, i) => {
      expect(out[i]!.key.equals(Buffer.from(userId))).toBe(true);
      expect(out[i]!.value.equals(expected(t, userId))).toBe(true);
    });
  });

  test('the JSON encoder writes chunks this way, after checking them against the schema', () => {
    const encode = createSyncEventEncoder(syncEventAvroType(), 'json');
    expect(encode.many).toBeDefined();
    const records = toSyncRecords(
      trigger,
      [
        { userId: 'a', active: true, status: 1 },
        { userId: 'b', active: false, status: 1 },
      ],
      { includeInactive: false, includeCompleted: true },
      encode,
    );
    expect(records).toHaveLength(1);
    expect(records[0]!.value).toEqual(
      Buffer.from(
        encode(
          buildSyncEvent(
            trigger.courseId,
            trigger.batchId,
            'a',
            trigger.requestedAt,
            syncEventUuid(trigger.triggerId, 'a'),
          ),
        ) as string,
      ),
    );
    const bad = [42 as unknown as string];
    expect(() => encode.many!(trigger, bad)).toThrow(expect.objectContaining({ code: 'SYNC_INVALID_EVENT' }));
    expect(() => encode.many!({ ...trigger, requestedAt: 1.5 }, ['a'])).toThrow(
      expect.objectContaining({ code: 'SYNC_INVALID_EVENT', field: 'ets' }),
    );
  });
});
