import { execFile } from 'node:child_process';
import path from 'node:path';

/**
 * An operator's command pointed at a Kafka or Cassandra that is not there (a typo in the address,
 * the cluster down) ends in one line that names the address and the variable to check, not a
 * dozen of the Kafka client's retry logs; LOG_LEVEL brings those back when asked for.
 */
const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist/src/cli.js');

function runCli(
  env: NodeJS.ProcessEnv,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [cli, ...args], { cwd: root, env, timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const nowhere = {
  ...process.env,
  KAFKA_BROKERS: '127.0.0.1:1',
  CASSANDRA_CONTACT_POINTS: '127.0.0.1:1',
  KAFKA_CONNECTION_TIMEOUT_MS: '100',
  LOG_LEVEL: 'info',
};

const commands: Array<[string[], string]> = [
  [['status', 'some-trigger'], 'Kafka at 127.0.0.1:1 (KAFKA_BROKERS)'],
  [['dlq', 'list'], 'Kafka at 127.0.0.1:1 (KAFKA_BROKERS)'],
  [['watch', '--limit', '1'], 'Kafka at 127.0.0.1:1 (KAFKA_BROKERS)'],
  [['migrate'], 'Kafka at 127.0.0.1:1 (KAFKA_BROKERS)'],
  [['batch', '--course-id', 'c', '--batch-id', 'b'], 'Cassandra at 127.0.0.1:1 (CASSANDRA_CONTACT_POINTS)'],
];

test('each command against servers that are not there: one error line naming the address and its variable', async () => {
  // Side by side: each waits out the Kafka client's retries (about 10 s).
  const [verbose, ...results] = await Promise.all([
    runCli({ ...nowhere, LOG_LEVEL: 'warn' }, ['status', 'some-trigger']),
    ...commands.map(([args]) => runCli(nowhere, args)),
  ]);
  commands.forEach(([args, what], i) => {
    const result = results[i] as Awaited<ReturnType<typeof runCli>>;
    const lines = result.stderr.trim().split('\n');
    expect({ args, code: result.code, stdout: result.stdout, lines: lines.length }).toEqual({
      args,
      code: 1,
      stdout: '',
      lines: 1,
    });
    expect(lines[0]).toMatch(new RegExp(`^error: connecting to ${what.replace(/[().]/g, '\\$&')}: `));
  });
  // A LOG_LEVEL other than the default brings the client's logs back.
  expect(verbose?.code).toBe(1);
  expect(verbose?.stderr).toMatch(/"component":"kafkajs"/);
});
