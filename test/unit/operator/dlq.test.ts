import { TASK_HEADER } from '../../../processors/enrolment-sync';
import { commandDlq } from '../../../src/operator/dlq-command';
import {
  deadLetterJson,
  formatDeadLetter,
  parseSelection,
  parseTimeFlag,
  printable,
  replayRecord,
  replayRefusal,
  resolveOffsets,
  selects,
  toDeadLetter,
  type DlqFlags,
} from '../../../src/operator/dlq';
import { loadConfig } from '../../../src/config';
import { deadLetterRecord, DEAD_LETTER_HEADERS, fitDeadLetter } from '../../../src/streams/dead-letter';
import { SyncError } from '../../../src/errors';

const NOW = Date.parse('2026-11-27T06:00:00.000Z');
const FAILED_AT = new Date('2026-11-27T05:00:00.000Z');
const target = { triggerTopic: 'in', taskTopic: 'tasks', taskPartitions: 4 };

/** A dead letter exactly as the processor writes one (src/streams/dead-letter.ts), read back. */
function deadLetter(
  opts: {
    value?: Buffer | string | null;
    key?: string | null;
    headers?: Record<string, string>;
    err?: unknown;
    offset?: string;
    partition?: number;
    failedAt?: Date;
    maxBytes?: number;
  } = {},
) {
  const source = {
    topic: 'in',
    partition: 3,
    offset: '41',
    timestamp: '1700000000000',
    key: opts.key === null ? null : Buffer.from(opts.key ?? 'k1'),
    value: opts.value === null ? null : Buffer.from(opts.value ?? '{"courseId":"c","batchId":42}'),
    headers: opts.headers ?? { 'x-origin': 'svc' },
  };
  const err =
    opts.err ??
    new SyncError('SYNC_BAD_TRIGGER', 'batchId must be a string, got number', { retriable: false, field: 'batchId' });
  let record = deadLetterRecord(source, err, 'enrolment-sync', opts.failedAt ?? FAILED_AT);
  if (opts.maxBytes !== undefined) record = fitDeadLetter(record, opts.maxBytes);
  const headers = Object.fromEntries(Object.entries(record.headers ?? {}).map(([k, v]) => [k, Buffer.from(String(v))]));
  return toDeadLetter(opts.partition ?? 0, {
    offset: opts.offset ?? '7',
    timestamp: String(record.timestamp),
    key: record.key === null || record.key === undefined ? null : Buffer.from(record.key),
    value: record.value === null || record.value === undefined ? null : Buffer.from(record.value),
    headers,
  });
}

function selection(flags: DlqFlags) {
  return parseSelection(flags, NOW);
}

function rejection(fn: () => unknown): { code?: string; field?: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; field?: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('reading a dead letter', () => {
  test('every dlq.* header the processor writes is read back', () => {
    const dl = deadLetter();
    expect(dl).toMatchObject({
      partition: 0,
      offset: '7',
      failedAt: FAILED_AT.getTime(),
      timestamp: 1700000000000,
      code: 'SYNC_BAD_TRIGGER',
      reason: 'batchId must be a string, got number',
      field: 'batchId',
      source: { topic: 'in', partition: 3, offset: '41' },
      processor: 'enrolment-sync',
      truncatedFrom: undefined,
      headersDropped: false,
    });
    expect(dl.headers['x-origin']).toBe('svc');
    expect(replayRefusal(dl)).toBeUndefined();
  });

  test('a record without our headers (written by hand) is still listed, failedAt from its timestamp', () => {
    const dl = toDeadLetter(1, { offset: '0', timestamp: '1700000000000', key: null, value: null, headers: {} });
    expect(dl).toMatchObject({ failedAt: 1700000000000, code: undefined, source: undefined });
    expect(formatDeadLetter(dl)).toBe('1:0  2023-11-14T22:13:20.000Z  -  field=-  from=-  reason=""  value(0 B)=null');
  });
});

describe('one line per dead letter', () => {
  test('offset, time, code, field, source, reason and the first bytes', () => {
    expect(formatDeadLetter(deadLetter())).toBe(
      '0:7  2026-11-27T05:00:00.000Z  SYNC_BAD_TRIGGER  field=batchId  from=in/3@41  ' +
        'reason="batchId must be a string, got number"  value(29 B)={"courseId":"c","batchId":42}',
    );
  });

  test('only the first bytes are shown, and a cut value says so', () => {
    const line = formatDeadLetter(deadLetter({ value: 'x'.repeat(500) }), 10);
    expect(line).toMatch(/value\(500 B\)=x{10}…$/);
    const truncated = deadLetter({ value: 'y'.repeat(20000), maxBytes: 8192 });
    expect(formatDeadLetter(truncated)).toMatch(/value\(\d+ of 20000 B, truncated\)=y{80}…$/);
  });

  test('a value that would break the line or drive the terminal is escaped, and stays one line', () => {
    const nasty = Buffer.concat([
      Buffer.from('a\nb\r\tc\\ "q" \x1b[2J\x07 ü 用户 🎓 \u202e evil'),
      Buffer.from([0xff, 0xfe, 0x00, 0xc3]),
    ]);
    const line = formatDeadLetter(
      deadLetter({
        value: nasty,
        err: new SyncError('SYNC_BAD_TRIGGER', 'bad "x"\nsecond line', { retriable: false }),
      }),
      1000,
    );
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toContain('reason="bad \\"x\\"\\nsecond line"');
    expect(line).toContain('a\\nb\\r\\tc\\\\ "q" \\x1b[2J\\x07 ü 用户 🎓 \\u{202e} evil\\xff\\xfe\\x00\\xc3');
    // eslint-disable-next-line no-control-regex
    expect(line).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f\u202e]/);
  });

  test('printable escapes overlong UTF-8 and lone surrogates byte by byte, and cuts at maxBytes', () => {
    expect(printable(Buffer.from([0xc0, 0xaf]))).toBe('\\xc0\\xaf');
    expect(printable(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80');
    expect(printable(Buffer.from('€uro'), 2)).toBe('\\xe2\\x82'); // a character cut in two is escaped
    expect(printable('plain')).toBe('plain');
    // Different bytes never print the same.
    expect(printable(Buffer.from('\\x41'))).not.toBe(printable(Buffer.from([0x41])));
  });

  test('--json carries the whole value, base64 and as text when it is UTF-8', () => {
    const json = deadLetterJson(deadLetter({ value: Buffer.from([0xff, 0x00]) }));
    expect(json).toMatchObject({
      id: '0:7',
      code: 'SYNC_BAD_TRIGGER',
      field: 'batchId',
      source: { topic: 'in', partition: 3, offset: '41' },
      key: { bytes: 2, text: 'k1' },
      value: { bytes: 2, base64: '/wA=' },
      replayable: true,
      refusal: null,
    });
    expect((json.value as { text?: string }).text).toBeUndefined();
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });
});

describe('selection flags', () => {
  test('filters parse, lists may be repeated or comma-separated', () => {
    const s = selection({
      code: ['SYNC_BAD_TRIGGER,SYNC_TIMEOUT'],
      field: ['batchId'],
      since: '2h',
      until: '2026-11-27T05:30:00Z',
      partition: '1',
      'from-offset': '5',
      'to-offset': '9',
      offset: ['1:6', '7'],
      limit: '3',
    });
    expect(s).toEqual({
      codes: ['SYNC_BAD_TRIGGER', 'SYNC_TIMEOUT'],
      fields: ['batchId'],
      since: NOW - 2 * 3600000,
      until: Date.parse('2026-11-27T05:30:00Z'),
      partition: 1,
      fromOffset: 5n,
      toOffset: 9n,
      offsets: [
        { partition: 1, offset: 6n },
        { partition: undefined, offset: 7n },
      ],
      limit: 3,
    });
    expect(resolveOffsets(s, [0, 1]).offsets).toEqual([
      { partition: 1, offset: 6n },
      { partition: 1, offset: 7n },
    ]);
  });

  test.each([
    [{ since: 'yesterday' }, 'since', /--since must be a time.*'yesterday'/],
    [{ until: '2026-13-01' }, 'until', /--until must be a time/],
    [{ since: '1h', until: '2h' }, 'until', /must be later than --since/],
    [{ partition: '-1' }, 'partition', /--partition must be a whole number ≥ 0, got '-1'/],
    [{ partition: '1', 'from-offset': 'x' }, 'from-offset', /--from-offset must be an offset/],
    [{ 'from-offset': '9', 'to-offset': '3' }, 'to-offset', /must not be below --from-offset/],
    [{ offset: ['1:x'] }, 'offset', /--offset must be OFFSET or PARTITION:OFFSET.*'1:x'/],
    [{ limit: '0' }, 'limit', /--limit must be a whole number ≥ 1/],
    [{ partition: '' }, 'partition', /--partition must not be empty/],
  ])('%j is refused naming --%s', (flags, field, message) => {
    const err = rejection(() => selection(flags as DlqFlags));
    expect(err).toMatchObject({ code: 'SYNC_BAD_REQUEST', field });
    expect(err.message).toMatch(message);
  });

  test('a bare offset needs the partition when the topic has several', () => {
    const s = selection({ offset: ['7'] });
    expect(resolveOffsets(s, [0]).offsets).toEqual([{ partition: 0, offset: 7n }]);
    expect(rejection(() => resolveOffsets(s, [0, 1])).message).toMatch(/7 is ambiguous: the topic has 2 partitions/);
    expect(rejection(() => resolveOffsets(selection({ offset: ['5:1'] }), [0, 1])).message).toMatch(/no partition 5/);
    expect(rejection(() => resolveOffsets(selection({ partition: '4' }), [0, 1])).field).toBe('partition');
  });

  test('times: ISO-8601, epoch ms, Sunbird form, or a duration ago', () => {
    expect(parseTimeFlag('since', '30m', NOW)).toBe(NOW - 1800000);
    expect(parseTimeFlag('since', '7d', NOW)).toBe(NOW - 7 * 86400000);
    expect(parseTimeFlag('since', '1700000000000', NOW)).toBe(1700000000000);
    expect(parseTimeFlag('since', '2021-03-04 05:58:04:382+0000', NOW)).toBe(1614837484382);
  });

  test('every criterion given must hold', () => {
    const dl = deadLetter({ offset: '7', partition: 1 });
    const yes = (flags: DlqFlags) => expect(selects(resolveOffsets(selection(flags), [0, 1]), dl)).toBe(true);
    const no = (flags: DlqFlags) => expect(selects(resolveOffsets(selection(flags), [0, 1]), dl)).toBe(false);
    yes({});
    yes({ code: ['SYNC_TIMEOUT,SYNC_BAD_TRIGGER'], field: ['batchId'], partition: '1' });
    no({ code: ['SYNC_TIMEOUT'] });
    no({ field: ['courseId'] });
    no({ partition: '0' });
    yes({ 'from-offset': '7', 'to-offset': '7' });
    no({ 'from-offset': '8' });
    no({ 'to-offset': '6' });
    yes({ offset: ['1:7'] });
    no({ offset: ['0:7'] });
    yes({ since: '2026-11-27T05:00:00Z', until: '2026-11-27T05:00:00.001Z' });
    no({ since: '2026-11-27T05:00:00.001Z' });
    no({ until: '2026-11-27T05:00:00Z' }); // until is exclusive
  });
});

describe('replay', () => {
  test('the original key, value and headers go back to the trigger topic, with where they came from; the diagnosis stays behind', () => {
    const dl = deadLetter({ offset: '12', partition: 1 });
    const { topic, message } = replayRecord(dl, 'in.dlq', target, new Date(NOW));
    expect(topic).toBe('in');
    expect(message.key?.toString()).toBe('k1');
    expect(message.value?.toString()).toBe('{"courseId":"c","batchId":42}');
    expect(message.partition).toBeUndefined();
    expect(message.headers).toEqual({
      'x-origin': 'svc',
      'dlq.replayed.from.topic': 'in.dlq',
      'dlq.replayed.from.partition': '1',
      'dlq.replayed.from.offset': '12',
      'dlq.replayed.at': '2026-11-27T06:00:00.000Z',
    });
    for (const name of Object.values(DEAD_LETTER_HEADERS)) expect(message.headers).not.toHaveProperty(name);
  });

  test('a null key stays null; a dead-lettered task goes back to its task partition', () => {
    expect(replayRecord(deadLetter({ key: null }), 'd', target, new Date()).message.key).toBeNull();
    const task = deadLetter({ headers: { [TASK_HEADER]: '1' } });
    const { topic, message } = replayRecord(task, 'd', target, new Date());
    expect(topic).toBe('tasks');
    expect(message.partition).toBe(3);
    expect(message.headers?.[TASK_HEADER]).toBe('1');
    expect(replayRecord(task, 'd', { ...target, taskPartitions: 2 }, new Date()).message.partition).toBeUndefined();
  });

  test('a dead letter cut to fit the topic is refused, saying why', () => {
    const dl = deadLetter({ value: 'z'.repeat(50000), maxBytes: 8192 });
    expect(dl.truncatedFrom).toBe(50000);
    expect(replayRefusal(dl)).toMatch(/value was cut to \d+ of 50000 bytes.*not whole/);
    expect(deadLetterJson(dl)).toMatchObject({ replayable: false, truncatedFrom: 50000 });
    const dropped = deadLetter({ headers: { big: 'h'.repeat(9000) }, maxBytes: 8192 });
    expect(dropped.headersDropped).toBe(true);
    expect(replayRefusal(dropped)).toMatch(/headers were dropped/);
  });
});

describe('dlq command flags, checked before anything connects', () => {
  // Brokers nobody listens on: a flag error must come first, without a connection attempt.
  const settings = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', KAFKA_CONNECTION_TIMEOUT_MS: '100' });
  const io = { out: () => undefined, err: () => undefined };
  test.each([
    [[], /dlq needs a subcommand: list or replay/],
    [['purge'], /unknown dlq subcommand 'purge'/],
    [['list', '--colour'], /Unknown option '--colour'/],
    [['list', '--bytes', 'many'], /--bytes must be a whole number/],
    [['list', '--since', 'soon'], /--since must be a time/],
    [['replay'], /dlq replay needs a selection: --offset P:O/],
    [['replay', '--dry-run'], /needs a selection/],
    [['replay', '--offset', 'a:b'], /--offset must be OFFSET or PARTITION:OFFSET/],
    [['list', '--json', 'extra'], /Unexpected argument 'extra'/],
  ])('dlq %j', async (args, message) => {
    await expect(commandDlq(settings, args, io)).rejects.toMatchObject({
      code: 'SYNC_BAD_REQUEST',
      message: expect.stringMatching(message),
    });
  });
});
