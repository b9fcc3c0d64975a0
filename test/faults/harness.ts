import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { createServer, connect } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from 'cassandra-driver';
import {
  AssignerProtocol,
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type IHeaders,
  type Producer,
  type RecordMetadata,
} from 'kafkajs';
import { insertCourseBatch, insertEnrolments, type SeedEnrolment } from '../../src/cassandra/seed';

/**
 * The fault tests drive the product from outside, as an operator would: the built CLI
 * (`node dist/src/cli.js migrate | processor`) in child processes, Kafka topics and Cassandra
 * tables. Nothing here imports the runtime; only the seeding helpers come from src/.
 *
 * Each test file gets a world of its own: topic prefix `fault-<hex>` (SYNC_ENV), keyspace
 * `fault_<hex>`, and consumer groups that carry the same hex, all removed by cleanup(). Every
 * processor's output is kept in `.run/faults/fault-<hex>/<name>.log`.
 *
 * Running them: `make test-faults` (both projects), or one file with the path before the project
 * (jest reads every word after --selectProjects as a project name):
 *   npx jest test/faults/poison.test.ts --selectProjects faults
 * SYNC_TEST_SKIP_SERVICES=1 skips `infra/services.sh up`; SYNC_FAULTS_CLI=<path to cli.js> tests
 * another build (the global setup otherwise rebuilds dist/ when a source file is newer).
 */
export const ROOT = path.resolve(__dirname, '../..');
/** The CLI under test; SYNC_FAULTS_CLI points the suite at another build. */
export const CLI = process.env.SYNC_FAULTS_CLI ?? path.join(ROOT, 'dist/src/cli.js');
export const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
export const CASSANDRA_CONTACT_POINTS = (process.env.CASSANDRA_CONTACT_POINTS ?? '127.0.0.1:9042').split(',');
export const CASSANDRA_LOCAL_DC = process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1';

/** What every processor in the fault tests runs with; a test adds or overrides its own. */
export const SESSION_TIMEOUT_MS = 6000;
export const HEARTBEAT_INTERVAL_MS = 1000;
const PROCESSOR_DEFAULTS: Record<string, string> = {
  LOG_LEVEL: 'info',
  SYNC_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
  SYNC_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS),
  SYNC_RETRY_INITIAL_MS: '100',
  SYNC_RETRY_MAX_MS: '2000',
};

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`'s value, or undefined once `ms` passed (the timer does not outlive the race). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function randomBetween(low: number, high: number): number {
  return low + Math.random() * (high - low);
}

// ---- processes ---------------------------------------------------------------------------------

export interface LogLine {
  at: number;
  stream: 'stdout' | 'stderr';
  raw: string;
  /** The parsed JSON object of a pino line; undefined for plain text. */
  json: Record<string, unknown> | undefined;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

/** Every child this module started, so that nothing outlives the test run. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** A `node dist/src/cli.js processor` child process, its output kept line by line. */
export class ProcessorProcess {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<Exit>;
  readonly startedAt = Date.now();
  private exitInfo: Exit | undefined;
  private readonly log: WriteStream;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.log = createWriteStream(logFile);
    children.add(child);
    for (const stream of ['stdout', 'stderr'] as const) {
      const source = child[stream];
      if (!source) continue;
      createInterface({ input: source }).on('line', (raw) => {
        let json: Record<string, unknown> | undefined;
        try {
          const parsed: unknown = JSON.parse(raw);
          if (typeof parsed === 'object' && parsed !== null) json = parsed as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        this.lines.push({ at: Date.now(), stream, raw, json });
        this.log.write(`${stream === 'stderr' ? 'E' : 'O'} ${raw}\n`);
      });
    }
    child.once('exit', (code, signal) => {
      this.exitInfo = { code, signal, at: Date.now() };
      children.delete(child);
    });
    // 'close' comes after 'exit' and after the last line of output has been read.
    this.exited = new Promise<Exit>((resolve) => {
      child.once('close', (code, signal) => {
        this.exitInfo ??= { code, signal, at: Date.now() };
        this.log.end();
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  get exit(): Exit | undefined {
    return this.exitInfo;
  }

  /** The last `n` lines of output, for failure messages. */
  tail(n = 30): string {
    return this.lines
      .slice(-n)
      .map((l) => l.raw)
      .join('\n');
  }

  /**
   * The processor's own account, for failure messages: its last `n` lines at info level or
   * above, without the Kafka client's (an outage makes thousands of those), each cut to 400
   * characters. What it was doing when a count came out wrong shows here, not in a tail.
   */
  story(n = 40): string {
    return this.lines
      .filter((l) => l.json === undefined || (Number(l.json.level) >= 30 && l.json.logger !== 'kafkajs'))
      .slice(-n)
      .map((l) => `${new Date(l.at).toISOString().slice(11, 23)} ${l.raw.slice(0, 400)}`)
      .join('\n');
  }

  linesMatching(pattern: RegExp): LogLine[] {
    return this.lines.filter((l) => pattern.test(l.raw));
  }

  /** Waits until GET /ready answers 200 on the processor's port. */
  async ready(timeoutMs = 60000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.alive) {
        throw new Error(
          `processor ${this.name} exited (${JSON.stringify(this.exitInfo)}) before it was ready:\n${this.tail()}`,
        );
      }
      try {
        const res = await fetch(`http://127.0.0.1:${this.port}/ready`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      // A build without the health port: being in the consumer group is the nearest sign of consuming.
      if (process.env.SYNC_FAULTS_READY_FROM_LOGS === '1' && this.linesMatching(/joined consumer group/).length > 0) {
        return;
      }
      await sleep(100);
    }
    throw new Error(
      `processor ${this.name} not ready on 127.0.0.1:${this.port}/ready after ${timeoutMs} ms:\n${this.tail()}`,
    );
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** kill -9 and wait for the process to be gone. */
  async kill9(): Promise<Exit> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** CPU time the process has used so far, in clock ticks (utime + stime from /proc). */
  cpuTicks(): number {
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[11]) + Number(fields[12]);
    } catch {
      return 0;
    }
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export function run(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: ROOT, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

// ---- reading topics ----------------------------------------------------------------------------

export interface SeenRecord {
  key: string | null;
  value: Buffer | null;
  headers: IHeaders;
  partition: number;
  offset: string;
  at: number;
}

/**
 * A consumer of one topic from its beginning, in a group of its own, counting what it sees:
 * read_committed by default, or read_uncommitted (which also sees records of aborted and open
 * transactions, so the difference of the two measures the work that was redone).
 */
export class TopicReader {
  readonly records: SeenRecord[] = [];
  readonly perKey = new Map<string, number>();
  lastRecordAt = 0;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly topic: string,
    readonly isolation: 'read_committed' | 'read_uncommitted',
    private readonly consumer: Consumer,
  ) {}

  static async start(
    world: World,
    topic: string,
    isolation: 'read_committed' | 'read_uncommitted' = 'read_committed',
  ): Promise<TopicReader> {
    const consumer = world.kafka.consumer({
      groupId: `fault-reader-${world.id}-${randomBytes(4).toString('hex')}`,
      readUncommitted: isolation === 'read_uncommitted',
      maxWaitTimeInMs: 200,
      sessionTimeout: 30000,
      retry: { retries: 10 },
    });
    const reader = new TopicReader(topic, isolation, consumer);
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const at = Date.now();
        for (const m of batch.messages) {
          const key = m.key?.toString() ?? null;
          reader.records.push({
            key,
            value: m.value,
            headers: m.headers ?? {},
            partition: batch.partition,
            offset: m.offset,
            at,
          });
          if (key !== null) reader.perKey.set(key, (reader.perKey.get(key) ?? 0) + 1);
        }
        if (batch.messages.length > 0) reader.lastRecordAt = at;
        const waiters = reader.waiters;
        reader.waiters = [];
        for (const w of waiters) w();
      },
    });
    await within(joined, 30000);
    world.readers.add(reader);
    return reader;
  }

  get total(): number {
    return this.records.length;
  }

  get distinct(): number {
    return this.perKey.size;
  }

  /** Resolves when `predicate` holds, checked after every fetched batch; false on timeout. */
  async waitFor(predicate: (r: TopicReader) => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await within(new Promise<void>((resolve) => this.waiters.push(resolve)), Math.min(left, 250));
    }
    return true;
  }

  /** Waits until nothing new arrived for `quietMs` (or `maxMs` passed). */
  async settle(quietMs: number, maxMs = quietMs * 4): Promise<void> {
    const deadline = Date.now() + maxMs;
    const since = Date.now();
    while (Date.now() < deadline) {
      if (Date.now() - Math.max(this.lastRecordAt, since) >= quietMs) return;
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    try {
      await this.consumer.disconnect();
    } catch {
      // best effort
    }
  }
}

/** Reads a topic from the beginning with a fresh consumer until `until` holds, then settles. */
export async function readTopic(
  world: World,
  topic: string,
  opts: {
    isolation?: 'read_committed' | 'read_uncommitted';
    until?: (r: TopicReader) => boolean;
    timeoutMs?: number;
    settleMs?: number;
  } = {},
): Promise<TopicReader> {
  const reader = await TopicReader.start(world, topic, opts.isolation);
  await reader.waitFor(opts.until ?? (() => false), opts.timeoutMs ?? 5000);
  await reader.settle(opts.settleMs ?? 1000);
  await reader.stop();
  return reader;
}

export function headerText(headers: IHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.map(String).join(',') : v.toString();
}

export interface ExactlyOnceReport {
  events: number;
  missing: number;
  duplicated: number;
  unexpected: number;
  /**
   * A few examples of each, to read in a failure message; a duplicated user with where each copy
   * sits (`partition/offset`) and its mid, which tells a replay (same mid) from a new event.
   */
  examples: { missing: string[]; duplicated: Array<[string, string[]]>; unexpected: string[] };
}

/** Compares what a reader saw, key by key, with the users that must each get exactly one event. */
export function exactlyOnce(reader: TopicReader, expected: ReadonlySet<string>): ExactlyOnceReport {
  const missing = [...expected].filter((u) => !reader.perKey.has(u));
  const duplicated = [...reader.perKey].filter(([, n]) => n > 1).map(([k]) => k);
  const unexpected = [...reader.perKey.keys()].filter((k) => !expected.has(k));
  const copies = (key: string): string[] =>
    reader.records
      .filter((r) => r.key === key)
      .map((r) => {
        let mid = '?';
        try {
          mid = String(JSON.parse(r.value?.toString() ?? 'null')?.mid);
        } catch {
          // not a JSON event
        }
        return `${r.partition}/${r.offset} ${mid}`;
      });
  return {
    events: reader.total,
    missing: missing.length,
    duplicated: duplicated.length,
    unexpected: unexpected.length,
    examples: {
      missing: missing.slice(0, 5),
      duplicated: duplicated.slice(0, 5).map((k) => [k, copies(k)]),
      unexpected: unexpected.slice(0, 5),
    },
  };
}

/** The report a correct run gives: every expected user once, nothing else. */
export function perfect(expected: ReadonlySet<string>): ExactlyOnceReport {
  return {
    events: expected.size,
    missing: 0,
    duplicated: 0,
    unexpected: 0,
    examples: { missing: [], duplicated: [], unexpected: [] },
  };
}

/** Sync events as JSON, for the fields the tests check. */
export function eventOf(record: SeenRecord): {
  mid: string;
  edata: { userId: string; batchId: string; courseId: string };
} {
  return JSON.parse(record.value?.toString() ?? 'null');
}

/**
 * Users whose events (seen read_uncommitted, so replays of aborted work included) do not all
 * carry the same mid: a replayed event must be recognisable by its mid.
 */
export function usersWithSeveralMids(reader: TopicReader): string[] {
  const mids = new Map<string, Set<string>>();
  for (const r of reader.records) {
    if (r.key === null) continue;
    const set = mids.get(r.key) ?? new Set<string>();
    set.add(eventOf(r).mid);
    mids.set(r.key, set);
  }
  return [...mids].filter(([, s]) => s.size > 1).map(([k]) => k);
}

// ---- the world ---------------------------------------------------------------------------------

export interface Topics {
  trigger: string;
  output: string;
  deadLetter: string;
  checkpoints: string;
  tasks: string;
}

export interface WorldOptions {
  partitions?: number;
  /** Use another world's keyspace (seeded once for several tests); that world drops it. */
  keyspaceOf?: World;
  /** Environment for migrate and every processor of this world. */
  env?: Record<string, string>;
}

/** One test file's own topics, keyspace and groups on the shared servers, and its processes. */
export class World {
  readonly id = randomBytes(5).toString('hex');
  readonly syncEnv = `fault-${this.id}`;
  readonly keyspace: string;
  readonly topics: Topics = {
    trigger: `${this.syncEnv}.enrolment.sync.trigger`,
    output: `${this.syncEnv}.batch.enrolment.sync.request`,
    deadLetter: `${this.syncEnv}.enrolment.sync.trigger.dlq`,
    checkpoints: `${this.syncEnv}.enrolment.sync.checkpoints`,
    tasks: `${this.syncEnv}.enrolment.sync.tasks`,
  };
  /** The processor's consumer group, as the product names it (`{SYNC_ENV}.enrolment-sync`). */
  readonly groupId = `${this.syncEnv}.enrolment-sync`;
  readonly kafka: Kafka;
  readonly admin: Admin;
  cassandra: Client;
  readonly processors: ProcessorProcess[] = [];
  readonly readers = new Set<TopicReader>();
  readonly logDir: string;
  private producer: Producer | undefined;
  private readonly env: Record<string, string>;

  constructor(private readonly options: WorldOptions = {}) {
    this.keyspace = options.keyspaceOf?.keyspace ?? `fault_${this.id}`;
    this.env = {
      SYNC_ENV: this.syncEnv,
      CASSANDRA_KEYSPACE: this.keyspace,
      TOPIC_PARTITIONS: String(options.partitions ?? 2),
      ...options.env,
    };
    this.kafka = new Kafka({ clientId: `fault-${this.id}`, brokers: BROKERS, logLevel: logLevel.NOTHING });
    this.admin = this.kafka.admin();
    this.cassandra = new Client({ contactPoints: CASSANDRA_CONTACT_POINTS, localDataCenter: CASSANDRA_LOCAL_DC });
    this.logDir = path.join(ROOT, '.run', 'faults', this.syncEnv);
    mkdirSync(this.logDir, { recursive: true });
  }

  /** Environment of a child process: this world's settings over the test defaults. */
  childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...process.env, ...PROCESSOR_DEFAULTS, ...this.env, ...extra };
  }

  /** `node dist/src/cli.js migrate`: keyspace, tables, index and topics, as an operator creates them. */
  async migrate(): Promise<void> {
    await this.admin.connect();
    await this.cassandra.connect();
    const result = await run(process.execPath, [CLI, 'migrate'], { env: this.childEnv({ LOG_LEVEL: 'warn' }) });
    if (result.code !== 0) {
      throw new Error(`migrate exited with ${result.code}:\n${result.stdout}\n${result.stderr}`);
    }
  }

  async seed(rows: Iterable<SeedEnrolment>, batches: Array<[string, string]> = []): Promise<number> {
    for (const [courseId, batchId] of batches) {
      await insertCourseBatch(this.cassandra, this.keyspace, courseId, batchId, 'fault test batch');
    }
    return insertEnrolments(this.cassandra, this.keyspace, rows);
  }

  /** Starts `node dist/src/cli.js processor` with its own health port; does not wait for it. */
  async spawnProcessor(name: string, extra: Record<string, string> = {}): Promise<ProcessorProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'processor'], {
      cwd: ROOT,
      // The client id names the process in the group (kafkajs member ids start with it).
      env: this.childEnv({ PROCESSOR_PORT: String(port), KAFKA_CLIENT_ID: this.clientId(name), ...extra }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new ProcessorProcess(name, port, child, path.join(this.logDir, `${name}.log`));
    this.processors.push(p);
    return p;
  }

  /** A new Cassandra session, for after an outage (the driver's reconnection back-off can be long). */
  async reconnectCassandra(): Promise<void> {
    await this.cassandra.shutdown().catch(() => undefined);
    this.cassandra = new Client({ contactPoints: CASSANDRA_CONTACT_POINTS, localDataCenter: CASSANDRA_LOCAL_DC });
    await this.cassandra.connect();
  }

  clientId(processorName: string): string {
    return `fault-${this.id}-${processorName}`;
  }

  /** Starts a processor and waits until it answers /ready. */
  async startProcessor(name: string, extra: Record<string, string> = {}): Promise<ProcessorProcess> {
    const p = await this.spawnProcessor(name, extra);
    await p.ready();
    return p;
  }

  async send(
    topic: string,
    messages: Array<{ key: string | null; value: Buffer | string | null; partition?: number }>,
  ): Promise<RecordMetadata[]> {
    if (!this.producer) {
      this.producer = this.kafka.producer({ allowAutoTopicCreation: false });
      await this.producer.connect();
    }
    const sent: RecordMetadata[] = [];
    for (let i = 0; i < messages.length; i += 500) {
      sent.push(...(await this.producer.send({ topic, acks: -1, messages: messages.slice(i, i + 500) })));
    }
    return sent;
  }

  /** Writes one JSON trigger; returns the trigger partition it landed on. */
  async sendTrigger(trigger: Record<string, unknown>, key: string = randomBytes(6).toString('hex')): Promise<number> {
    const [meta] = await this.send(this.topics.trigger, [{ key, value: JSON.stringify(trigger) }]);
    return meta?.partition ?? -1;
  }

  /** The members of the processor group now, each with the trigger and task partitions it owns. */
  async groupMembers(): Promise<{
    state: string;
    members: Array<{ memberId: string; partitions: number[]; taskPartitions: number[] }>;
  }> {
    const { groups } = await this.admin.describeGroups([this.groupId]);
    const group = groups[0];
    if (!group) return { state: 'Unknown', members: [] };
    return {
      state: group.state,
      members: group.members.map((m) => {
        let partitions: number[];
        let taskPartitions: number[];
        try {
          const assignment = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
          partitions = assignment?.assignment[this.topics.trigger] ?? [];
          taskPartitions = assignment?.assignment[this.topics.tasks] ?? [];
        } catch {
          partitions = [];
          taskPartitions = [];
        }
        return { memberId: m.memberId, partitions, taskPartitions };
      }),
    };
  }

  /** Waits until the processor group is stable with `count` members. */
  async groupStable(count: number, timeoutMs = 60000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const group = await this.groupMembers();
      last = JSON.stringify(group);
      if (group.state === 'Stable' && group.members.length === count) return;
      await sleep(250);
    }
    throw new Error(`group ${this.groupId} not stable with ${count} members after ${timeoutMs} ms: ${last}`);
  }

  /**
   * Which of `candidates` is expanding the trigger on `partition`: the member that owns that
   * trigger partition, unless the trigger was split into token-range tasks (its owner logs it),
   * in which case the members that own task partitions expand it (with the task topic's
   * partitions assigned apart from the trigger topic's, that is usually another member).
   * Among several such owners, the busiest; the CPU each process used over a second is measured
   * and reported (`busy`: at least half the busiest one's), but an idle member of a group still
   * reads the status and checkpoint topics, so on a loaded machine CPU alone cannot tell.
   */
  async expandingProcess(
    candidates: ProcessorProcess[],
    partition: number,
  ): Promise<{ process: ProcessorProcess; how: string; busy: ProcessorProcess[]; split: boolean }> {
    const before = candidates.map((p) => p.cpuTicks());
    await sleep(1000);
    const used = candidates.map((p, i) => p.cpuTicks() - (before[i] ?? 0));
    const most = Math.max(...used);
    const busy = candidates.filter((_, i) => (used[i] ?? 0) >= 0.5 * most);
    const ticks = `CPU ticks in 1 s: ${candidates.map((p, i) => `${p.name} ${used[i]}`).join(', ')}`;
    const split = candidates.some(
      (p) => p.linesMatching(/"msg":"whole batch split into token-range tasks"/).length > 0,
    );
    const group = await this.groupMembers();
    const owners = candidates
      .map((p, i) => ({ p, used: used[i] ?? 0 }))
      .filter(({ p }) =>
        group.members.some(
          (m) =>
            m.memberId.startsWith(`${this.clientId(p.name)}-`) &&
            (split ? m.taskPartitions.length > 0 : m.partitions.includes(partition)),
        ),
      )
      .sort((x, y) => y.used - x.used);
    const owner = owners[0];
    if (owner) {
      const what = split ? 'owns task partitions (the trigger was split into tasks)' : 'owns the trigger partition';
      return { process: owner.p, how: `${what}; ${ticks}`, busy, split };
    }
    return { process: candidates[used.indexOf(most)] as ProcessorProcess, how: `busiest; ${ticks}`, busy, split };
  }

  /** Best effort, every step attempted: processes, readers, topics, groups, keyspace, clients. */
  async cleanup(): Promise<void> {
    const steps: Array<() => Promise<unknown>> = [
      () => Promise.all(this.processors.map((p) => p.kill9())),
      () => Promise.all([...this.readers].map((r) => r.stop())),
      async () => this.producer?.disconnect(),
      async () => {
        const topics = (await this.admin.listTopics()).filter((t) => t.startsWith(`${this.syncEnv}.`));
        if (topics.length > 0) await this.admin.deleteTopics({ topics });
      },
      async () => {
        const { groups } = await this.admin.listGroups();
        const mine = groups.map((g) => g.groupId).filter((g) => g.includes(this.id));
        if (mine.length > 0) await this.admin.deleteGroups(mine);
      },
      async () => {
        if (!this.options.keyspaceOf) {
          await this.cassandra.execute(`DROP KEYSPACE IF EXISTS ${this.keyspace}`, [], { readTimeout: 60000 });
        }
      },
      () => this.admin.disconnect(),
      () => this.cassandra.shutdown(),
    ];
    for (const step of steps) {
      try {
        await step();
      } catch {
        // one failed step must not skip the rest
      }
    }
  }
}

// ---- seeds and expectations ------------------------------------------------------------------------

export interface SeededBatch {
  courseId: string;
  batchId: string;
  rows: number;
  /** The users that must each get exactly one event from a whole-batch trigger. */
  active: Set<string>;
}

/**
 * A batch of `rows` enrolments where every `inactiveEvery`-th row is inactive (or, with
 * `activeEvery`, only every n-th row is active), written in one go.
 */
export async function seedBatch(
  world: World,
  opts: { courseId: string; batchId: string; rows: number; inactiveEvery?: number; activeEvery?: number },
): Promise<SeededBatch> {
  const active = new Set<string>();
  const rows: SeedEnrolment[] = [];
  for (let i = 0; i < opts.rows; i++) {
    const userId = `${opts.batchId}-u${String(i).padStart(7, '0')}`;
    const isActive = opts.activeEvery ? i % opts.activeEvery === 0 : i % (opts.inactiveEvery ?? 10) !== 0;
    rows.push({
      userId,
      courseId: opts.courseId,
      batchId: opts.batchId,
      active: isActive,
      status: i % 7 === 0 ? 2 : 1,
    });
    if (isActive) active.add(userId);
  }
  await world.seed(rows, [[opts.courseId, opts.batchId]]);
  return { courseId: opts.courseId, batchId: opts.batchId, rows: opts.rows, active };
}

/** Rows of other courses and batches: a bigger table that a scan has to read through. */
export function* otherRows(count: number, prefix = 'other'): Generator<SeedEnrolment> {
  for (let i = 0; i < count; i++) {
    yield {
      userId: `${prefix}-${i}`,
      courseId: `do_other_${i % 40}`,
      batchId: `other_${i % 300}`,
      active: true,
      status: 1,
    };
  }
}

// ---- the shared servers ------------------------------------------------------------------------

export type Server = 'kafka' | 'cassandra';
export const SERVER_PORTS: Record<Server, number> = {
  kafka: Number(process.env.KAFKA_PORT ?? 9092),
  cassandra: Number(process.env.CASSANDRA_PORT ?? 9042),
};

/** `bash infra/services.sh <command> <server>` of this checkout. */
export function services(command: 'up' | 'down' | 'status', server: Server) {
  return run('bash', [path.join(ROOT, 'infra/services.sh'), command, server], { timeoutMs: 240000 });
}

/**
 * Only a server this checkout's infra/services.sh started can be stopped by it (`down` leaves
 * anyone else's alone, which would make an outage test pass without an outage).
 */
export async function assertOwnServer(server: Server): Promise<void> {
  const status = await services('status', server);
  if (!new RegExp(`^${server}\\s+running\\b`, 'm').test(status.stdout)) {
    throw new Error(
      `${server} is not run by this checkout's infra/services.sh (status: ${status.stdout.trim()}); ` +
        'the outage test stops and starts the server it owns, so start it with `bash infra/services.sh up`',
    );
  }
}
