// cassandra-driver's result parsing, as patched by patches/cassandra-driver+4.10.0.patch (applied
// on install). A rows result that is not streamed row by row arrives as one buffered frame; the
// parser used to push each row through its stream to the ResultEmitter as an item of its own (an
// object, a Readable.push and a _write per row) only for the emitter to gather them into one
// result again. It now hands the emitter the frame's rows at once.
/* eslint-disable @typescript-eslint/no-require-imports */
const { Protocol, Parser, ResultEmitter } = require('cassandra-driver/lib/streams') as {
  Protocol: new (options: object) => NodeJS.ReadWriteStream;
  Parser: new (
    options: object,
    encoder: unknown,
  ) => NodeJS.ReadWriteStream & { setOptions(id: number, o: object): void };
  ResultEmitter: new (options: object) => NodeJS.WritableStream & {
    _write(item: unknown, encoding: string, callback: (err?: Error | null) => void): void;
  };
};
const Encoder = require('cassandra-driver/lib/encoder') as new (version: number, options: object) => unknown;
const { FrameHeader } = require('cassandra-driver/lib/types') as {
  FrameHeader: new (
    version: number,
    flags: number,
    streamId: number,
    opcode: number,
    bodyLength: number,
  ) => {
    toBuffer(): Buffer;
  };
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** A driver Row: its columns as properties, and get(). */
type DriverRow = Record<string, unknown> & { get(column: string): unknown };

const VERSION = 4;
const OPCODE_RESULT = 0x08;
const KIND_ROWS = 2;
const GLOBAL_TABLES_SPEC = 0x0001;
const TYPE_VARCHAR = 0x000d;
const TYPE_BOOLEAN = 0x0004;

function string(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}
function int(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
function short(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function bytes(b: Buffer | null): Buffer {
  return b === null ? int(-1) : Buffer.concat([int(b.length), b]);
}

/** A RESULT frame of kind Rows with columns (userid text, active boolean). */
function rowsFrame(streamId: number, rows: Array<[string, boolean | null]>): Buffer {
  const body = Buffer.concat([
    int(KIND_ROWS),
    int(GLOBAL_TABLES_SPEC),
    int(2),
    string('ks'),
    string('user_enrolments'),
    string('userid'),
    short(TYPE_VARCHAR),
    string('active'),
    short(TYPE_BOOLEAN),
    int(rows.length),
    ...rows.flatMap(([userId, active]) => [
      bytes(Buffer.from(userId, 'utf8')),
      bytes(active === null ? null : Buffer.from([active ? 1 : 0])),
    ]),
  ]);
  return Buffer.concat([new FrameHeader(VERSION, 0, streamId, OPCODE_RESULT, body.length).toBuffer(), body]);
}

function pipeline() {
  const protocol = new Protocol({ objectMode: true });
  const parser = new Parser({ objectMode: true }, new Encoder(VERSION, {}));
  const emitter = new ResultEmitter({ objectMode: true });
  const items: unknown[] = [];
  const write = emitter._write.bind(emitter);
  emitter._write = (item, encoding, callback) => {
    items.push(item);
    write(item, encoding, callback);
  };
  const results: Array<{ streamId: number; rows: DriverRow[] }> = [];
  emitter.on('result', (header: { streamId: number }, err: unknown, result: { rows: DriverRow[] }) => {
    if (err) throw err;
    results.push({ streamId: header.streamId, rows: result.rows });
  });
  protocol.pipe(parser).pipe(emitter);
  return { protocol, items, results };
}

const flushed = () => new Promise((r) => setImmediate(r));

describe('cassandra-driver rows result (patched parser)', () => {
  const rows: Array<[string, boolean | null]> = Array.from({ length: 500 }, (_, i) => [
    `user-${i}`,
    i % 3 === 0 ? null : i % 2 === 0,
  ]);

  test('a buffered rows frame reaches the emitter as one result item, every row in order and decoded', async () => {
    const { protocol, items, results } = pipeline();
    protocol.write(rowsFrame(7, rows));
    await flushed();
    // The result and the frame's end: not one item per row.
    expect(items).toHaveLength(2);
    expect(results).toHaveLength(1);
    expect(results[0]?.streamId).toBe(7);
    expect(results[0]?.rows.map((r) => [r.userid, r.active])).toEqual(rows);
    expect(results[0]?.rows[0]?.get('userid')).toBe('user-0');
  });

  test('a frame that arrives in many chunks, and two frames back to back, give the same results', async () => {
    const { protocol, results } = pipeline();
    const frame = rowsFrame(3, rows);
    for (let at = 0; at < frame.length; at += 97) protocol.write(frame.subarray(at, at + 97));
    protocol.write(Buffer.concat([rowsFrame(4, rows.slice(0, 2)), rowsFrame(5, [])]));
    await flushed();
    expect(results.map((r) => [r.streamId, r.rows.length])).toEqual([
      [3, 500],
      [4, 2],
      [5, 0],
    ]);
    expect(results[0]?.rows.map((r) => r.userid)).toEqual(rows.map(([u]) => u));
  });
});
