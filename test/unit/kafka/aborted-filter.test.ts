// kafkajs's read_committed filter, as patched by patches/kafkajs+2.2.4.patch (applied on install).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const filterAbortedMessages = require('kafkajs/src/consumer/filterAbortedMessages') as (args: {
  messages: Message[];
  abortedTransactions: Array<{ producerId: string; firstOffset: string }>;
}) => Message[];

interface Message {
  offset: string;
  key: Buffer | null;
  batchContext: { producerId: string; inTransaction: boolean };
}

const record = (offset: number, producerId: string): Message => ({
  offset: String(offset),
  key: Buffer.from('k'),
  batchContext: { producerId, inTransaction: true },
});
const abortMarker = (offset: number, producerId: string): Message => ({
  offset: String(offset),
  key: Buffer.from([0, 0, 0, 0]),
  batchContext: { producerId, inTransaction: true },
});

describe('read_committed filtering of aborted transactions', () => {
  test('two producers whose aborted transactions interleave: none of their records leak', () => {
    // Producer B began first (offset 10) but was aborted after A (which began at 12): the broker
    // lists aborted transactions in abort order, A before B. A committed producer C interleaves.
    const messages = [
      record(10, 'B'),
      record(11, 'C'),
      record(12, 'A'),
      record(13, 'B'),
      record(14, 'A'),
      abortMarker(15, 'A'),
      record(16, 'B'),
      abortMarker(17, 'B'),
      record(18, 'A'),
      record(19, 'B'),
    ];
    const kept = filterAbortedMessages({
      messages,
      abortedTransactions: [
        { producerId: 'A', firstOffset: '12' },
        { producerId: 'B', firstOffset: '10' },
      ],
    });
    // C's record, the markers, and what A and B wrote after their aborts.
    expect(kept.map((m) => m.offset)).toEqual(['11', '15', '17', '18', '19']);
  });

  test('an aborted transaction begun before the fetched range is still filtered', () => {
    const kept = filterAbortedMessages({
      messages: [record(100, 'A'), abortMarker(101, 'A'), record(102, 'A')],
      abortedTransactions: [{ producerId: 'A', firstOffset: '40' }],
    });
    expect(kept.map((m) => m.offset)).toEqual(['101', '102']);
  });
});
