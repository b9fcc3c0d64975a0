import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * A second instance started on a port another process holds (two `make run`s, two processors on
 * one machine without PROCESSOR_PORT) must fail before its processor joins the consumer group:
 * joining and leaving again would move the running members' partitions twice, each move fencing
 * their producers mid-expansion.
 */
const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist/src/cli.js');

interface Result {
  code: number | null;
  stderr: string;
}

function runCli(env: NodeJS.ProcessEnv, args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile('node', [cli, ...args], { cwd: root, env, timeout: 60000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr });
    });
  });
}

function holdPort(): Promise<net.Server> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

describe('a port already taken', () => {
  let ctx: TestContext;
  let held: net.Server;
  let port: number;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    ctx = await createTestContext();
    held = await holdPort();
    port = (held.address() as net.AddressInfo).port;
    env = {
      ...process.env,
      SYNC_ENV: ctx.settings.env,
      CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace,
      TOPIC_PARTITIONS: '2',
      LOG_LEVEL: 'info',
    };
  });

  afterAll(async () => {
    await new Promise((resolve) => held.close(resolve));
    await ctx.cleanup();
  });

  /** The processor's group as the coordinator knows it: 'Dead' when no member ever joined. */
  async function groupState(): Promise<string> {
    const { groups } = await ctx.admin.describeGroups([ctx.settings.processor.groupId]);
    return groups[0]?.state ?? 'Dead';
  }

  test.each([
    ['processor', { PROCESSOR_PORT: 'port' }, 'health endpoints', 'PROCESSOR_PORT'],
    ['run', { API_PORT: 'port' }, 'API', 'API_PORT'],
    ['api', { API_PORT: 'port' }, 'API', 'API_PORT'],
  ])(
    '`%s` exits 2 naming the port and its variable, and never joins the group',
    async (command, vars, what, variable) => {
      const portVars = Object.fromEntries(Object.keys(vars).map((k) => [k, String(port)]));
      const result = await runCli({ ...env, ...portVars }, [command]);

      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`error: ${what} cannot listen on 127.0.0.1:${port}: listen EADDRINUSE`);
      expect(result.stderr).toContain(variable);
      expect(result.stderr).not.toMatch(/"msg":"(joined consumer group|Consumer has joined the group)"/);
      expect(await groupState()).toBe('Dead');
    },
  );
});
