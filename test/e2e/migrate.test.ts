import { execFile } from 'node:child_process';
import path from 'node:path';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * `migrate` run again with another TOPIC_PARTITIONS (an operator who wants more partitions): the
 * topics are left as they are, since more partitions would move keys, and the command says so
 * for each one instead of reporting "already there" as if the setting had been applied.
 */
const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist/src/cli.js');

function migrate(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [cli, 'migrate'], { cwd: root, env, timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('migrate against topics that already exist', () => {
  let ctx: TestContext;
  let env: NodeJS.ProcessEnv;
  let topics: string[];

  beforeAll(async () => {
    ctx = await createTestContext(); // its topics have 2 partitions
    env = { ...process.env, SYNC_ENV: ctx.settings.env, CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace };
    const t = ctx.settings.topics;
    topics = [t.trigger, t.output, t.deadLetter, t.checkpoints, t.tasks, t.status];
  });

  afterAll(() => ctx.cleanup());

  test('the same partition count: nothing to say', async () => {
    const result = await migrate({ ...env, TOPIC_PARTITIONS: '2' });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('(already there)');
    expect(result.stderr).not.toContain('warning');
  });

  test('another partition count: each topic named with what it has, and left as it was', async () => {
    const result = await migrate({ ...env, TOPIC_PARTITIONS: '3' });
    expect(result.code).toBe(0);
    for (const topic of topics) {
      expect(result.stderr).toContain(
        `warning: ${topic} already has 2 partition(s), not the 3 TOPIC_PARTITIONS asks for`,
      );
    }
    const meta = await ctx.admin.fetchTopicMetadata({ topics });
    expect(meta.topics.map((t) => t.partitions.length)).toEqual(topics.map(() => 2));
  });
});
