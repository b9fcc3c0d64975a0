import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * bin/enrolment-sync, the launcher every deployment starts (package.json "bin"): it sets glibc's
 * arena limit before node starts and then execs node, so node is the process a supervisor, a
 * signal or the fault tests' pid handling reaches. Needs no server.
 *
 * A probe loaded with NODE_OPTIONS=--require reports what node itself received (its pid and
 * environment) before the CLI runs; then it exits with a chosen code or blocks until killed.
 */
const root = path.resolve(__dirname, '../..');
const launcher = path.join(root, 'bin/enrolment-sync');
const cli = path.join(root, 'dist/src/cli.js');

let dir: string;
let probe: string;

beforeAll(() => {
  if (!existsSync(cli)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  dir = mkdtempSync(path.join(os.tmpdir(), 'launcher-test-'));
  probe = path.join(dir, 'probe.js');
  writeFileSync(
    probe,
    `const fs = require('node:fs');
fs.writeFileSync(process.env.PROBE_FILE, JSON.stringify({ pid: process.pid, arenaMax: process.env.MALLOC_ARENA_MAX ?? null, execArgv: process.execArgv, argv0: process.argv0 }));
if (process.env.PROBE_EXIT !== undefined) process.exit(Number(process.env.PROBE_EXIT));
// Blocks the main thread without a handler of its own, so a signal's default action applies.
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface ProbeReport {
  pid: number;
  arenaMax: string | null;
  execArgv: string[];
  /** The node the launcher exec'd, as it named it. */
  argv0: string;
}

/** Only what a test sets: a MALLOC_ARENA_MAX in the machine's environment must not leak in. */
function probeEnv(name: string, extra: Record<string, string> = {}): { env: NodeJS.ProcessEnv; file: string } {
  const file = path.join(dir, `${name}.json`);
  const env = { PATH: process.env.PATH ?? '', NODE_OPTIONS: `--require ${probe}`, PROBE_FILE: file, ...extra };
  return { env, file };
}

function readReport(file: string): ProbeReport {
  return JSON.parse(readFileSync(file, 'utf8')) as ProbeReport;
}

async function waitForReport(file: string, child: ChildProcess): Promise<ProbeReport> {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the launcher exited early with ${child.exitCode}`);
    if (existsSync(file)) {
      try {
        return readReport(file);
      } catch {
        // written but not complete yet
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the probe never reported');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('node gets MALLOC_ARENA_MAX=2 when the caller sets none, or an empty one', () => {
  for (const [name, extra] of [
    ['unset', {}],
    ['empty', { MALLOC_ARENA_MAX: '' }],
  ] as const) {
    const { env, file } = probeEnv(name, { ...extra, PROBE_EXIT: '0' });
    const res = spawnSync(launcher, ['help'], { env, encoding: 'utf8', timeout: 30000 });
    expect(res.status).toBe(0);
    expect(readReport(file).arenaMax).toBe('2');
  }
});

test("the caller's own MALLOC_ARENA_MAX is kept", () => {
  const { env, file } = probeEnv('own', { MALLOC_ARENA_MAX: '4', PROBE_EXIT: '0' });
  const res = spawnSync(launcher, ['help'], { env, encoding: 'utf8', timeout: 30000 });
  expect(res.status).toBe(0);
  expect(readReport(file).arenaMax).toBe('4');
});

test('node starts with a 64 MB old generation unless ENROLMENT_SYNC_OLD_SPACE_MB says otherwise; a bad value is named', () => {
  for (const [name, extra, flag] of [
    ['floor-default', {}, '--initial-old-space-size=64'],
    ['floor-own', { ENROLMENT_SYNC_OLD_SPACE_MB: '128' }, '--initial-old-space-size=128'],
  ] as const) {
    const { env, file } = probeEnv(name, { ...extra, PROBE_EXIT: '0' });
    expect(spawnSync(launcher, ['help'], { env, timeout: 30000 }).status).toBe(0);
    expect(readReport(file).execArgv).toEqual([flag]);
  }
  for (const bad of ['', '64MB', '-1']) {
    const res = spawnSync(launcher, ['help'], {
      env: { PATH: process.env.PATH ?? '', ENROLMENT_SYNC_OLD_SPACE_MB: bad },
      encoding: 'utf8',
      timeout: 30000,
    });
    if (bad === '') {
      // Empty is unset, as for MALLOC_ARENA_MAX.
      expect(res.status).toBe(0);
      continue;
    }
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('ENROLMENT_SYNC_OLD_SPACE_MB');
  }
});

test("node's exit status is the launcher's, and the CLI runs with its arguments", () => {
  const { env } = probeEnv('exit', { PROBE_EXIT: '7' });
  expect(spawnSync(launcher, ['help'], { env, timeout: 30000 }).status).toBe(7);

  const plain = { PATH: process.env.PATH ?? '' };
  const help = spawnSync(launcher, ['help'], { env: plain, encoding: 'utf8', timeout: 30000 });
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/^usage: enrolment-sync <command>/);
  const unknown = spawnSync(launcher, ['no-such-command', 'with spaces'], { env: plain, encoding: 'utf8' });
  expect(unknown.status).toBe(2);
  expect(unknown.stderr).toMatch(/unknown command 'no-such-command'/);
  const badConfig = spawnSync(launcher, ['config'], {
    env: { ...plain, TOPIC_PARTITIONS: 'many' },
    encoding: 'utf8',
    timeout: 30000,
  });
  expect(badConfig.status).toBe(2);
  expect(badConfig.stderr).toContain('TOPIC_PARTITIONS');
});

test('works through a symlink, as npm links it into node_modules/.bin', () => {
  const bin = path.join(dir, 'node_modules/.bin');
  mkdirSync(bin, { recursive: true });
  const link = path.join(bin, 'enrolment-sync');
  symlinkSync(path.relative(bin, launcher), link);
  const res = spawnSync(link, ['help'], { env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8', timeout: 30000 });
  expect(res.status).toBe(0);
  expect(res.stdout).toMatch(/^usage: enrolment-sync <command>/);
});

test('runs on the node the native module was built for: ENROLMENT_SYNC_NODE, else the one recorded in .run/native-node, else PATH’s', () => {
  // A checkout of its own, so the real one's .run/native-node does not decide.
  const checkout = path.join(dir, 'checkout');
  mkdirSync(path.join(checkout, 'bin'), { recursive: true });
  mkdirSync(path.join(checkout, '.run'), { recursive: true });
  const copy = path.join(checkout, 'bin/enrolment-sync');
  writeFileSync(copy, readFileSync(launcher), { mode: 0o755 });
  const recorded = path.join(dir, 'recorded-node');
  const chosen = path.join(dir, 'chosen-node');
  symlinkSync(process.execPath, recorded);
  symlinkSync(process.execPath, chosen);
  const nodeRun = (name: string, extra: Record<string, string> = {}): string => {
    const { env, file } = probeEnv(name, { ...extra, PROBE_EXIT: '0' });
    const res = spawnSync(copy, ['help'], { env, encoding: 'utf8', timeout: 30000 });
    expect(res.status).toBe(0);
    return readReport(file).argv0;
  };

  expect(nodeRun('node-none')).toBe('node');
  writeFileSync(path.join(checkout, '.run/native-node'), `${recorded}\n`);
  expect(nodeRun('node-recorded')).toBe(recorded);
  expect(nodeRun('node-chosen', { ENROLMENT_SYNC_NODE: chosen })).toBe(chosen);
  // A recorded node that is gone (.run/ cleaned of it) is passed over, not exec'd.
  writeFileSync(path.join(checkout, '.run/native-node'), path.join(dir, 'no-such-node'));
  expect(nodeRun('node-gone')).toBe('node');
});

describe.each(['SIGTERM', 'SIGKILL'] as const)('%s', (signal) => {
  test('reaches node itself: the launcher is replaced by node, not its parent', async () => {
    const { env, file } = probeEnv(`signal-${signal}`);
    const child = spawn(launcher, ['help'], { env, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
    let report: ProbeReport | undefined;
    try {
      report = await waitForReport(file, child);
      // The same process: a shell that started node as its child would have a pid of its own.
      expect(report.pid).toBe(child.pid);
      child.kill(signal);
      expect(await exited).toBe(signal);
      expect(alive(report.pid)).toBe(false);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      // A launcher that did not exec would leave node behind, blocked in the probe.
      if (report && alive(report.pid)) process.kill(report.pid, 'SIGKILL');
    }
  });
});
