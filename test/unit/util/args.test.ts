import { SyncError } from '../../../src/errors';
import { parseCommandLine } from '../../../src/util/args';

const options = {
  'batch-id': { type: 'string' },
  json: { type: 'boolean' },
  topic: { type: 'string', multiple: true },
} as const;

function refusal(args: string[]): SyncError {
  try {
    parseCommandLine(args, options, true);
  } catch (err) {
    if (err instanceof SyncError) return err;
    throw err;
  }
  throw new Error(`accepted: ${args.join(' ')}`);
}

describe('parseCommandLine', () => {
  test('takes options and positionals as parseArgs does', () => {
    expect(parseCommandLine(['t1', '--batch-id', 'b', '--json', '--topic', 'x', '--topic=y'], options, true)).toEqual({
      values: { 'batch-id': 'b', json: true, topic: ['x', 'y'] },
      positionals: ['t1'],
    });
  });

  test('refuses a single-valued option given twice, naming it and both values, instead of keeping the last', () => {
    const err = refusal(['--batch-id', 'a', '--batch-id=b']);
    expect(err.code).toBe('SYNC_BAD_REQUEST');
    expect(err.field).toBe('batch-id');
    expect(err.message).toBe("--batch-id was given more than once ('a', then 'b'); give it once");
    expect(refusal(['--json', '--json']).message).toMatch(/^--json was given more than once/);
  });

  test('unknown options and positionals where none are taken stay refused as bad requests', () => {
    expect(refusal(['--batch', 'b']).code).toBe('SYNC_BAD_REQUEST');
    expect(() => parseCommandLine(['extra'], options)).toThrow(SyncError);
  });
});
