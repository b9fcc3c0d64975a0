import avro from 'avsc';
import { createEnrolmentSyncProcessor, type EnrolmentSource } from '../../../processors/enrolment-sync';
import { createSyncEventEncoder } from '../../../processors/enrolment-sync/sync-event';
import { parseTrigger, type SyncTrigger } from '../../../processors/enrolment-sync/trigger';
import type { EnrolmentRow, KeyPage } from '../../../src/cassandra/enrolments';
import { createLogger } from '../../../src/observability/logger';
import { loadAvroSchema, syncEventAvroType, TRIGGER_SCHEMA_FILE, triggerAvroType } from '../../../src/schemas';
import type { OutputChunk, ProcessContext } from '../../../src/streams/types';

const origin = { topic: 't', partition: 1, offset: '42', timestamp: '1700000000000' };
const READ_AT = 1_795_647_124_000;

/** The trigger schema as it was before `enrolments`: what upstream services and old triggers were written with. */
function schemaWithoutEnrolments(): avro.schema.RecordType {
  const schema = loadAvroSchema(TRIGGER_SCHEMA_FILE);
  return { ...schema, fields: schema.fields.filter((f) => f.name !== 'enrolments') };
}

function rejection(value: unknown): { code?: string; field?: string; message: string; retriable?: boolean } {
  try {
    parseTrigger(value, origin);
  } catch (err) {
    return err as { code?: string; field?: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('the trigger contract: carried enrolments', () => {
  const base = { courseId: 'c', batchId: 'b', userIds: ['u1', 'u2', 'u3'] };

  test('JSON: rows are kept as given, an absent active or status reads null', () => {
    const trigger = parseTrigger(
      {
        ...base,
        enrolments: { readAt: READ_AT, rows: [{ userId: 'u2', active: false, status: 2 }, { userId: 'u1' }] },
      },
      origin,
    );
    expect(trigger.enrolments).toEqual({
      readAt: READ_AT,
      rows: [
        { userId: 'u2', active: false, status: 2 },
        { userId: 'u1', active: null, status: null },
      ],
    });
  });

  test("JSON: a status takes Avro's whole int range, both ends included", () => {
    const rows = [
      { userId: 'u1', active: true, status: -(2 ** 31) },
      { userId: 'u2', active: true, status: 2 ** 31 - 1 },
    ];
    const trigger = parseTrigger({ ...base, enrolments: { readAt: READ_AT, rows } }, origin);
    expect(trigger.enrolments?.rows).toEqual(rows);
  });

  test('left out or null: no field at all, exactly as before', () => {
    expect('enrolments' in parseTrigger(base, origin)).toBe(false);
    expect('enrolments' in parseTrigger({ ...base, enrolments: null }, origin)).toBe(false);
  });

  test.each([
    [{ ...base, enrolments: 'all' }, 'enrolments', /object \{readAt, rows\}/],
    [{ ...base, enrolments: [] }, 'enrolments', /object \{readAt, rows\}/],
    [
      { courseId: 'c', batchId: 'b', enrolments: { readAt: READ_AT, rows: [] } },
      'enrolments',
      /only come with userIds/,
    ],
    [{ ...base, enrolments: { rows: [] } }, 'enrolments.readAt', /epoch milliseconds, got undefined/],
    [{ ...base, enrolments: { readAt: '1795647124000', rows: [] } }, 'enrolments.readAt', /epoch milliseconds/],
    [{ ...base, enrolments: { readAt: -1, rows: [] } }, 'enrolments.readAt', /got -1/],
    [{ ...base, enrolments: { readAt: 1.5, rows: [] } }, 'enrolments.readAt', /got 1.5/],
    [{ ...base, enrolments: { readAt: READ_AT, rows: {} } }, 'enrolments.rows', /list/],
    [{ ...base, enrolments: { readAt: READ_AT, rows: ['u1'] } }, 'enrolments.rows[0]', /object/],
    [
      { ...base, enrolments: { readAt: READ_AT, rows: [{ userId: 'x' }] } },
      'enrolments.rows[0].userId',
      /one of userIds, got 'x'/,
    ],
    [
      { ...base, enrolments: { readAt: READ_AT, rows: [{ userId: 7 }] } },
      'enrolments.rows[0].userId',
      /one of userIds/,
    ],
    [
      { ...base, enrolments: { readAt: READ_AT, rows: [{ userId: 'u1' }, { userId: 'u1' }] } },
      'enrolments.rows[1].userId',
      /second time/,
    ],
    [
      { ...base, enrolments: { readAt: READ_AT, rows: [{ userId: 'u1', active: 'yes' }] } },
      'enrolments.rows[0].active',
      /true, false or null/,
    ],
    [
      { ...base, enrolments: { readAt: READ_AT, rows: [{ userId: 'u1', status: 1.5 }] } },
      'enrolments.rows[0].status',
      /integer or null, got 1.5/,
    ],
    [
      { ...base, enrolments: { readAt: READ_AT, rows: [{ userId: 'u1', status: 2 ** 31 }] } },
      'enrolments.rows[0].status',
      /integer or null/,
    ],
    [
      { ...base, enrolments: { readAt: READ_AT, rows: [{ userId: 'u1', status: -(2 ** 31) - 1 }] } },
      'enrolments.rows[0].status',
      /integer or null/,
    ],
  ])('rejects %j naming %s (dead-lettered, never a crash)', (value, field, message) => {
    const err = rejection(value);
    expect(err.code).toBe('SYNC_BAD_TRIGGER');
    expect(err.retriable).toBe(false);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  test('Avro: the new schema reads triggers written without the field (enrolments null), and the old schema reads new ones (the field skipped)', () => {
    const current = triggerAvroType();
    const old = avro.Type.forSchema(schemaWithoutEnrolments());
    const written = {
      triggerId: 't1',
      courseId: 'c',
      batchId: 'b',
      userIds: ['u1'],
      requestedBy: 'svc',
      requestedAt: 1,
      source: 'upstream',
      includeInactive: null,
      includeCompleted: null,
    };
    const backward = current.fromBuffer(old.toBuffer(written), current.createResolver(old)) as Record<string, unknown>;
    expect(backward.enrolments).toBeNull();
    expect('enrolments' in parseTrigger(backward, origin)).toBe(false);

    const carried = { readAt: READ_AT, rows: [{ userId: 'u1', active: true, status: null }] };
    const forward = old.fromBuffer(
      current.toBuffer({ ...written, enrolments: carried }),
      old.createResolver(current),
    ) as Record<string, unknown>;
    expect(forward).toEqual(expect.objectContaining(written));
    expect('enrolments' in forward).toBe(false);

    const roundTrip = current.fromBuffer(current.toBuffer({ ...written, enrolments: carried }));
    expect(parseTrigger(roundTrip, origin).enrolments).toEqual(carried);
  });

  test('the field has a default, so adding it is a compatible change; one without would not be', () => {
    const field = loadAvroSchema(TRIGGER_SCHEMA_FILE).fields.find((f) => f.name === 'enrolments');
    expect(field?.default).toBeNull();
    // Without the default, old data cannot be read with the new schema: what the registry refuses.
    const noDefault = loadAvroSchema(TRIGGER_SCHEMA_FILE);
    noDefault.fields = noDefault.fields.map((f) => (f.name === 'enrolments' ? { name: f.name, type: f.type } : f));
    expect(() => avro.Type.forSchema(noDefault).createResolver(avro.Type.forSchema(schemaWithoutEnrolments()))).toThrow(
      /enrolments/,
    );
  });
});

/** An in-memory enrolment table that counts the reads asked of it. */
function fakeTable(rows: EnrolmentRow[]) {
  const byUser = new Map(rows.map((r) => [r.userId, r]));
  const reads: string[][] = [];
  const source: EnrolmentSource = {
    async *findByKeysInChunks(_c, _b, userIds, chunkSize, _signal, from = 0): AsyncIterable<KeyPage> {
      for (let i = from; i < userIds.length; i += chunkSize) {
        const slice = userIds.slice(i, i + chunkSize);
        reads.push([...slice]);
        const found = slice.map((u) => byUser.get(u)).filter((r): r is EnrolmentRow => r !== undefined);
        yield { rows: found, next: i + slice.length };
      }
    },
    // eslint-disable-next-line require-yield
    async *readBatch() {
      throw new Error('not a whole-batch test');
    },
  };
  return { source, reads };
}

async function expand(
  trigger: SyncTrigger,
  source: EnrolmentSource,
  opts: { maxAgeMs: number; now: number; resumeFrom?: unknown },
): Promise<OutputChunk[]> {
  const processor = createEnrolmentSyncProcessor({
    enrolments: source,
    encode: createSyncEventEncoder(syncEventAvroType(), 'json'),
    defaults: { includeInactive: false, includeCompleted: true },
    keyChunkSize: 2,
    carriedEnrolmentsMaxAgeMs: opts.maxAgeMs,
    now: () => opts.now,
  });
  const ctx: ProcessContext = {
    log: createLogger('silent'),
    signal: new AbortController().signal,
    message: { ...origin, key: null, value: null, headers: {} },
    resumeFrom: opts.resumeFrom,
  };
  const chunks: OutputChunk[] = [];
  for await (const chunk of processor.process(trigger, ctx)) chunks.push(chunk);
  return chunks;
}

/** Chunks as bytes: keys and values of every record, positions, rows read and progress. */
function asBytes(chunks: OutputChunk[]) {
  return chunks.map((c) => ({
    records: c.records.map((r) => [Buffer.from(r.key as Buffer).toString('hex'), Buffer.from(r.value).toString('hex')]),
    position: c.position,
    rowsRead: c.rowsRead,
    progress: c.progress,
  }));
}

describe('the processor with carried enrolments', () => {
  const table: EnrolmentRow[] = [
    { userId: 'u1', active: true, status: 1 },
    { userId: 'u2', active: false, status: 1 }, // the policy drops it
    { userId: 'u3', active: null, status: 2 },
    { userId: 'u5', active: true, status: 0 },
  ];
  const listed = ['u1', 'u2', 'u3', 'u4', 'u5']; // u4 is not enrolled
  const plain = parseTrigger(
    { triggerId: 'tr-1', courseId: 'c', batchId: 'b', userIds: listed, requestedAt: READ_AT },
    origin,
  );
  const carrying: SyncTrigger = { ...plain, enrolments: { readAt: READ_AT, rows: table } };

  test('fresh: the events, checkpoints, rows read and progress are byte for byte those of a read, and nothing is read', async () => {
    const read = fakeTable(table);
    const fromCassandra = await expand(plain, read.source, { maxAgeMs: 60_000, now: READ_AT + 5 });
    expect(read.reads).toEqual([['u1', 'u2'], ['u3', 'u4'], ['u5']]);

    const none = fakeTable(table);
    const fromTrigger = await expand(carrying, none.source, { maxAgeMs: 60_000, now: READ_AT + 5 });
    expect(none.reads).toEqual([]);
    expect(asBytes(fromTrigger)).toEqual(asBytes(fromCassandra));
    expect(fromTrigger.flatMap((c) => c.records.map((r) => String(r.key)))).toEqual(['u1', 'u3', 'u5']);
  });

  test('resumed from a checkpoint: continues after it from the carried rows too', async () => {
    const read = fakeTable(table);
    const resumed = await expand(plain, read.source, { maxAgeMs: 60_000, now: READ_AT, resumeFrom: { keys: 2 } });
    const none = fakeTable(table);
    const carried = await expand(carrying, none.source, { maxAgeMs: 60_000, now: READ_AT, resumeFrom: { keys: 2 } });
    expect(none.reads).toEqual([]);
    expect(asBytes(carried)).toEqual(asBytes(resumed));
  });

  test.each([
    ['older than the limit', { maxAgeMs: 60_000, now: READ_AT + 60_001 }],
    ['read in the future beyond the limit (a broken clock)', { maxAgeMs: 60_000, now: READ_AT - 60_001 }],
    ['the limit is 0 (never trusted)', { maxAgeMs: 0, now: READ_AT + 1 }],
  ])('%s: read from Cassandra again, as before', async (_name, opts) => {
    const read = fakeTable(table);
    const chunks = await expand(carrying, read.source, opts);
    expect(read.reads).toHaveLength(3);
    expect(chunks.flatMap((c) => c.records.map((r) => String(r.key)))).toEqual(['u1', 'u3', 'u5']);
  });

  test('the trigger policy still decides: carried rows the policy drops give no event', async () => {
    const none = fakeTable([]);
    const chunks = await expand({ ...carrying, includeCompleted: false }, none.source, {
      maxAgeMs: 60_000,
      now: READ_AT,
    });
    expect(chunks.flatMap((c) => c.records.map((r) => String(r.key)))).toEqual(['u1', 'u5']);
  });
});
