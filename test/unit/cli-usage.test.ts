import { cli, usageOf } from '../../src/cli';

describe('a command’s --help', () => {
  test('usageOf gives each form of the command with the lines that explain it, and nothing else', () => {
    const batch = usageOf('batch');
    expect(batch).toContain('batch --course-id C --batch-id B');
    expect(batch).toContain('batch --file batches.csv');
    expect(batch).toContain('until done (exit 0) or failed (exit 1)');
    expect(batch).not.toContain('status <triggerId>');
    expect(usageOf('dlq')).toContain('filters: --code CODE');
    expect(usageOf('processor')).not.toContain('the API only');
    expect(usageOf('nosuch')).toBeUndefined();
  });

  test.each([
    ['batch', '--help'],
    ['dlq', 'replay', '-h'],
    ['status', '--help'],
  ])('%s … answers with its usage, not an unknown-option error', async (...argv) => {
    const printed: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
    try {
      await expect(cli(argv)).resolves.toBeUndefined();
    } finally {
      log.mockRestore();
    }
    expect(printed.join('\n')).toContain(`  ${argv[0]} `);
  });

  test('an unknown command with --help is still named as unknown', async () => {
    await expect(cli(['nosuch', '--help'])).rejects.toMatchObject({ code: 'SYNC_BAD_REQUEST' });
  });
});
