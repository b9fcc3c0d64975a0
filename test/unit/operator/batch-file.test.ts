import { parseBatchFile } from '../../../src/operator/batch-file';

describe('batch file', () => {
  test('reads courseId,batchId lines, with an optional header, comments, blank lines and quoted fields', () => {
    const text = 'courseId,batchId\n# a comment\n\ndo_1,b_1\n"do,2", "b ""2"""\r\ndo_1,b_1\n';
    expect(parseBatchFile(text, 'batches.csv')).toEqual([
      { courseId: 'do_1', batchId: 'b_1', line: 4 },
      { courseId: 'do,2', batchId: 'b "2"', line: 5 },
    ]);
  });

  test('names every bad line by its number, before anything is queued', () => {
    const text = 'do_1,b_1\ndo_2\n,b_3\ndo_4,b_4,extra\n"do_5,b_5\n';
    expect(() => parseBatchFile(text, 'batches.csv')).toThrow(
      expect.objectContaining({
        code: 'SYNC_BAD_REQUEST',
        message: [
          'batches.csv line 2: expected 2 fields (courseId,batchId), found 1',
          'batches.csv line 3: courseId is empty',
          'batches.csv line 4: expected 2 fields (courseId,batchId), found 3',
          'batches.csv line 5: a quoted field is not closed',
        ].join('\n'),
      }),
    );
  });

  test('an empty file is refused', () => {
    expect(() => parseBatchFile('# nothing\n\n', 'empty.csv')).toThrow('empty.csv lists no batch');
  });
});
