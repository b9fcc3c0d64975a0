import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig } from '../../src/config';
import { readTopic, type ConsumedRecord } from '../helpers/context';
import { contract, trackApi } from '../helpers/openapi';

/**
 * The README as a new user follows it, on the single-machine default: the built CLI, the default
 * keyspace and topics, the API on port 9000, and the curl example exactly as the README prints it.
 */
const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist/src/cli.js');
const env = { ...process.env, LOG_LEVEL: 'warn' };

function runCli(args: string[]) {
  return spawnSync('node', [cli, ...args], { cwd: root, env, encoding: 'utf8', timeout: 60000 });
}

function readmeExample(): string {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const block = /<!-- readme-example:start -->\s*```sh\n([\s\S]*?)```\s*<!-- readme-example:end -->/.exec(readme);
  if (!block?.[1]) throw new Error('README example block not found');
  return block[1];
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(
        `enrolment-sync run exited with ${child.exitCode}:\n${output().split('\n').slice(-15).join('\n')}`,
      );
    }
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

describe('README, followed as written', () => {
  let service: ChildProcess;
  let output = '';

  beforeAll(async () => {
    if (!existsSync(cli)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
    expect(runCli(['migrate']).status).toBe(0);
    const seeded = runCli(['seed-demo']);
    expect(seeded.status).toBe(0);
    expect(seeded.stdout).toMatch(/3000 enrolments/);
    service = spawn('node', [cli, 'run'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    service.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    service.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await waitReady('http://127.0.0.1:9000/ready', service, 60000, () => output);
    trackApi('http://127.0.0.1:9000');
  });

  afterAll(async () => {
    if (service.exitCode === null) {
      service.kill('SIGKILL');
    }
  });

  test('the curl example answers as the README shows', () => {
    const out = execFileSync('bash', ['-c', readmeExample()], { encoding: 'utf8' });
    const body = JSON.parse(out);
    contract.check({
      method: 'PATCH',
      path: '/v1/content/state/update',
      status: 200,
      contentType: 'application/json',
      body,
    });
    expect(body).toMatchObject({
      id: 'api.content.state.update',
      params: { status: 'success', err: null },
      responseCode: 'OK',
      result: { response: 'Success', users: 1, notEnrolled: ['user-000010', 'nobody'] },
    });
  });

  test('the batch command: clear errors for bad input, a triggerId and every active user’s event otherwise', async () => {
    const missing = runCli(['batch', '--course-id', 'do_demo_course']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--batch-id is required/);

    const unknownFlag = runCli(['batch', '--course', 'x']);
    expect(unknownFlag.status).toBe(2);
    expect(unknownFlag.stderr).toMatch(/--course/);

    const unknown = runCli(['batch', '--course-id', 'do_demo_course', '--batch-id', 'no_such_batch']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/no batch 'no_such_batch' of course 'do_demo_course'/);

    // The default topics outlive a run (make test runs this file once per KAFKA_CLIENT): only
    // events produced after this batch command count, so an earlier run cannot stand in for it.
    const queuedAt = Date.now();
    const ok = runCli(['batch', '--course-id', 'do_demo_course', '--batch-id', 'demo_batch_1']);
    expect(ok.status).toBe(0);
    expect(ok.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);

    const expected = new Set<string>();
    for (let i = 1; i <= 3000; i++) if (i % 10 !== 0) expected.add(`user-${String(i).padStart(6, '0')}`);
    const settings = loadConfig({});
    const kafka = new Kafka({ brokers: settings.kafka.brokers, logLevel: logLevel.NOTHING });
    const isDemo = (x: ConsumedRecord): boolean =>
      x.timestamp >= queuedAt && x.value.includes('"batchId":"demo_batch_1"');
    const records = await readTopic(kafka, settings.topics.output, {
      until: (r) => new Set(r.filter(isDemo).map((x) => x.key)).size >= expected.size,
      timeoutMs: 60000,
      settleMs: 200,
    });
    const users = new Set(records.filter(isDemo).map((x) => x.key as string));
    expect(users).toEqual(expected);
  });

  test('SIGTERM stops the service cleanly', async () => {
    const exited = new Promise<number | null>((resolve) => service.once('exit', (code) => resolve(code)));
    service.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toMatch(/enrolment-sync running/);
  });
});
