import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EnrolmentSyncService } from '../../src/service';
import { createTestContext, type TestContext } from '../helpers/context';
import { enrolment, seed, startService } from '../helpers/service';

/**
 * What an operator does, with the built CLI against the real servers: queue batches (one, the
 * same one twice, a file), watch them with --wait on a terminal and off one, and ask for a
 * trigger's status from the CLI and from the API, while it runs and after it ends or fails.
 */
const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist/src/cli.js');
const COURSE = 'do_course_ops';
const BIG = 'batch_ops_big';
const SMALL = 'batch_ops_small';
const BIG_USERS = 12_000;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(env: NodeJS.ProcessEnv, args: string[], timeoutMs = 60000): Promise<Result> {
  return new Promise((resolve) => {
    execFile('node', [cli, ...args], { cwd: root, env, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The CLI on a pseudo-terminal (util-linux `script`), as a person at a shell runs it. */
function runOnTerminal(env: NodeJS.ProcessEnv, args: string[]): Promise<Result> {
  const command = ['node', cli, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: root, env: { ...env, COLUMNS: '160' } });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr: '' }));
  });
}

describe('operators: batch, --wait, --file, status', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // Paced, so a whole batch runs for a few seconds and can be watched while it runs.
    ctx = await createTestContext({ SYNC_MAX_EVENTS_PER_SECOND: '4000', SYNC_READ_PLAN: 'scan' });
    env = {
      ...process.env,
      SYNC_ENV: ctx.settings.env,
      CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace,
      TOPIC_PARTITIONS: '2',
      LOG_LEVEL: 'warn',
    };
    await seed(
      ctx,
      [
        ...Array.from({ length: BIG_USERS }, (_, i) => enrolment(`ops-${i}`, COURSE, BIG)),
        ...Array.from({ length: 300 }, (_, i) => enrolment(`small-${i}`, COURSE, SMALL)),
      ],
      [
        [COURSE, BIG],
        [COURSE, SMALL],
      ],
    );
  });

  afterAll(async () => {
    await service?.stop();
    await ctx.cleanup();
  });

  test('the same batch queued twice before anyone expands it is one trigger; the status answers while it runs and when it is done', async () => {
    const [first, second] = await Promise.all([
      runCli(env, ['batch', '--course-id', COURSE, '--batch-id', BIG]),
      // A moment later, as a second operator would.
      new Promise<Result>((resolve) =>
        setTimeout(() => void runCli(env, ['batch', '--course-id', COURSE, '--batch-id', BIG]).then(resolve), 1500),
      ),
    ]);
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    const triggerId = first.stdout.trim();
    expect(second.stdout.trim()).toBe(triggerId);
    expect(second.stderr).toMatch(/already being synced: joined trigger/);

    const accepted = await runCli(env, ['status', triggerId, '--json']);
    expect(accepted.code).toBe(0);
    expect(JSON.parse(accepted.stdout)).toMatchObject({ triggerId, state: 'accepted', courseId: COURSE, batchId: BIG });

    service = await startService(ctx, { api: true, processor: true });
    const url = `${service.url}/v1/content/state/sync/${encodeURIComponent(triggerId)}`;
    const seen: Array<{ state: string; eventsProduced: number }> = [];
    for (let i = 0; i < 300; i++) {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { id: string; result: { status: { state: string; eventsProduced: number } } };
      expect(body.id).toBe('api.content.state.sync.read');
      seen.push(body.result.status);
      if (body.result.status.state === 'done') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const running = seen.filter((s) => s.state === 'running').map((s) => s.eventsProduced);
    expect(running.length).toBeGreaterThanOrEqual(2);
    expect(running[running.length - 1]).toBeGreaterThan(running[0] as number);
    expect(seen[seen.length - 1]).toMatchObject({ state: 'done', eventsProduced: BIG_USERS });

    const done = await runCli(env, ['status', triggerId]);
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(new RegExp(`^${triggerId}  done  12,000 events`));
  });

  test('batch --wait on a terminal draws a progress bar and returns when the trigger is done', async () => {
    const result = await runOnTerminal(env, ['batch', '--course-id', COURSE, '--batch-id', SMALL, '--wait']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/[█░]{10,}/);
    expect(result.stdout).toMatch(/100% \| 300 events/);
    expect(result.stdout).toMatch(/done \[█{24}\] 100%/);
  });

  test('batch --wait without a terminal prints progress lines, ending with done', async () => {
    const result = await runCli(env, ['batch', '--course-id', COURSE, '--batch-id', SMALL, '--wait']);
    expect(result.code).toBe(0);
    const triggerId = result.stdout.trim();
    expect(result.stderr).not.toMatch(/[█░]/);
    expect(result.stderr.trim().split('\n').pop()).toMatch(new RegExp(`^${triggerId}  done  300 events`));
  });

  test('batch --file queues every listed batch, and a bad line is named with nothing queued', async () => {
    const dir = os.tmpdir();
    const good = path.join(dir, `batches-${ctx.id}.csv`);
    writeFileSync(good, `courseId,batchId\n${COURSE},${SMALL}\n# a comment\n${COURSE},${SMALL}\n`);
    const ok = await runCli(env, ['batch', '--file', good, '--wait']);
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim().split('\n')).toHaveLength(1); // the same batch twice is one sync

    const bad = path.join(dir, `batches-bad-${ctx.id}.csv`);
    writeFileSync(bad, `${COURSE},${SMALL}\n${COURSE},no_such_batch\n${COURSE}\n`);
    const refused = await runCli(env, ['batch', '--file', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/line 3: expected 2 fields/);
    expect(refused.stdout).toBe('');
    const missing = path.join(dir, `batches-missing-${ctx.id}.csv`);
    writeFileSync(missing, `${COURSE},${SMALL}\n${COURSE},no_such_batch\n`);
    const unknown = await runCli(env, ['batch', '--file', missing]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/line 2: no batch 'no_such_batch'/);
    expect(unknown.stdout).toBe('');
  });

  test('a trigger that fails shows its reason; an unknown one is a 404 envelope and a clear CLI error', async () => {
    const producer = ctx.kafka.producer();
    await producer.connect();
    const triggerId = `bad-${ctx.id}`;
    await producer.send({
      topic: ctx.settings.topics.trigger,
      messages: [{ value: JSON.stringify({ triggerId, courseId: COURSE, batchId: SMALL, includeInactive: 'yes' }) }],
    });
    await producer.disconnect();
    let status: { state?: string; error?: { code: string; message: string } } = {};
    for (let i = 0; i < 100 && status.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const res = await fetch(`${service.url}/v1/content/state/sync/${triggerId}`);
      if (res.status === 200) status = ((await res.json()) as { result: { status: typeof status } }).result.status;
    }
    expect(status).toMatchObject({ state: 'failed', error: { code: 'SYNC_BAD_TRIGGER' } });
    expect(status.error?.message).toMatch(/includeInactive/);
    const cliView = await runCli(env, ['status', triggerId]);
    expect(cliView.stdout).toMatch(/failed.*SYNC_BAD_TRIGGER: includeInactive/);

    const res = await fetch(`${service.url}/v1/content/state/sync/no-such-trigger`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ params: { status: 'failed', err: 'RESOURCE_NOT_FOUND' } });
    const unknown = await runCli(env, ['status', 'no-such-trigger']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no trigger 'no-such-trigger'/);
  });
});
