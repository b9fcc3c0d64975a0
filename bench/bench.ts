/**
 * The benchmark of issue "Performance at scale". Every figure is measured in the same run on the
 * same machine, and targets are ratios against the raw ceilings, since absolute times drift.
 *
 *   BENCH_SIZE=default|small   (default: 2,000,000 rows with a 1,000,000-user batch)
 *   BENCH_ROWS, BENCH_TARGET   override the sizes
 *   --peer-check               only check the plain-JVM peer against ours on the 1,000-user batch
 *   --api                      only the API figures (5), printed, docs/ left alone;
 *                              BENCH_API_MODES=run,split,api picks the set-ups (default run,api),
 *                              BENCH_API_PROCESSORS=N runs `split` with N processor members,
 *                              BENCH_API_CONNECTIONS=4,16,… and BENCH_API_SECONDS the load levels
 *   --expansions               only the exactly-once expansions of the 10,000-user and the big batch
 *                              (CPU-s per 1M events, events/s, peak RSS), printed, docs untouched;
 *                              BENCH_PROCESSOR_NODE_ARGS are node's arguments for the processor (--cpu-prof…),
 *                              BENCH_PROCESSOR_OUTPUT a path prefix its output is kept at,
 *                              BENCH_MEMORY_SPLIT=1 adds what the peak RSS was made of (V8 heap,
 *                              external, the rest; bench/memory-sampler.ts)
 *   --clients                  only expand the big batch exactly once with each Kafka client
 *                              (KAFKA_CLIENT), BENCH_REPEAT times each (default 1), alternating;
 *                              BENCH_CLIENTS=confluent (comma-separated) runs only those,
 *                              BENCH_GUARANTEE=at_least_once expands at least once instead,
 *                              BENCH_PEER=1 runs the plain-JVM peer after each round too
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { Kafka, logLevel, Partitioners, type Admin } from 'kafkajs';
import { createCassandra } from '../src/cassandra/client';
import { EnrolmentReader } from '../src/cassandra/enrolments';
import { insertCourseBatch, insertEnrolments, type SeedEnrolment } from '../src/cassandra/seed';
import { loadConfig, type Settings } from '../src/config';
import { readToEnd } from '../src/kafka/read-to-end';
import { ensureTopics, topicSpecs } from '../src/kafka/topics';
import { applyCassandraSchema, DEFAULT_REPLICATION } from '../src/migrate';
import { buildSyncEvent } from '../processors/enrolment-sync/sync-event';
import { createLogger } from '../src/observability/logger';
import { StatusStore } from '../src/streams/status-store';
import type { TriggerStatus } from '../src/streams/status';
import { registerCompressionCodecs } from '../src/kafka/compression-codecs';
import type { MemorySplit } from './memory-sampler';
import { cpuMsOf, procStats, serverPid, type ProcStats } from './proc';

const root = path.resolve(__dirname, '../..');
const size = process.env.BENCH_SIZE === 'small' ? 'small' : 'default';
const ROWS = Number(process.env.BENCH_ROWS ?? (size === 'small' ? 200_000 : 2_000_000));
const TARGET = Number(process.env.BENCH_TARGET ?? (size === 'small' ? 100_000 : 1_000_000));
const MID = 10_000;
const SMALL = 1_000;
const COURSE = 'do_bench_course';
const BIG_BATCH = 'bench_batch_big';
const MID_BATCH = 'bench_batch_10k';
const SMALL_BATCH = 'bench_batch_1k';
const keyspace = `bench_${size}_${ROWS}`;
const PEER_DIR = path.join(root, 'bench/peer');
const PEER_JAR = path.join(PEER_DIR, 'target/peer.jar');
/** The output topics' partitions: what `migrate` gives ours (TOPIC_PARTITIONS), and the peer's. */
const OUTPUT_PARTITIONS = 4;

registerCompressionCodecs(); // the peer's output is lz4-compressed, and so is ours

const figures: Record<string, number> = {};
let peerJava = '';
const notes: string[] = [];

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function benchSettings(env: Record<string, string> = {}): Settings {
  return loadConfig({
    SYNC_ENV: `bench-${randomUUID().slice(0, 8)}`,
    CASSANDRA_KEYSPACE: keyspace,
    LOG_LEVEL: 'silent',
    ...env,
  });
}

function* benchRows(): Generator<SeedEnrolment> {
  // Users of the big batch are also enrolled elsewhere; the rest of the table is spread over
  // 2,000 other batches of 200 courses.
  for (let i = 0; i < TARGET; i++)
    yield { userId: `u${i}`, courseId: COURSE, batchId: BIG_BATCH, active: true, status: i % 10 === 0 ? 2 : 1 };
  for (let i = 0; i < MID; i++)
    yield { userId: `m${i}`, courseId: COURSE, batchId: MID_BATCH, active: true, status: 1 };
  for (let i = 0; i < SMALL; i++)
    yield { userId: `s${i}`, courseId: COURSE, batchId: SMALL_BATCH, active: true, status: 1 };
  const rest = ROWS - TARGET - MID - SMALL;
  for (let i = 0; i < rest; i++) {
    const userId = i % 2 === 0 ? `u${i % TARGET}` : `x${i}`;
    yield { userId, courseId: `do_course_${i % 200}`, batchId: `batch_${i % 2000}`, active: i % 13 !== 0, status: 1 };
  }
}

const activeCounts = new Map<string, number>();
/** The users of a batch that a sync selects by default (active; completed ones included), as seeded. */
function activeUsers(batchId: string): number {
  if (activeCounts.size === 0) {
    for (const row of benchRows()) {
      if (row.active === false) continue;
      const key = `${row.courseId}/${row.batchId}`;
      activeCounts.set(key, (activeCounts.get(key) ?? 0) + 1);
    }
  }
  return activeCounts.get(`${COURSE}/${batchId}`) ?? 0;
}

async function seed(): Promise<void> {
  const cassandra = createCassandra(benchSettings().cassandra);
  await cassandra.connect();
  try {
    await applyCassandraSchema(cassandra, keyspace, DEFAULT_REPLICATION);
    await cassandra.execute(`CREATE TABLE IF NOT EXISTS ${keyspace}.bench_meta (k text PRIMARY KEY, rows bigint)`);
    const meta = await cassandra.execute(`SELECT rows FROM ${keyspace}.bench_meta WHERE k = 'seeded'`);
    if (Number(meta.first()?.rows ?? 0) === ROWS) {
      log(`reusing ${keyspace}: ${ROWS} rows already seeded`);
      return;
    }
    for (const b of [BIG_BATCH, MID_BATCH, SMALL_BATCH]) await insertCourseBatch(cassandra, keyspace, COURSE, b, b);
    const started = Date.now();
    let last = 0;
    await insertEnrolments(cassandra, keyspace, benchRows(), 256, (n) => {
      if (n - last >= 100_000 || n === ROWS) {
        last = n;
        log(
          `seeded ${n.toLocaleString()} / ${ROWS.toLocaleString()} rows (${Math.round(n / ((Date.now() - started) / 1000))} rows/s)`,
        );
      }
    });
    figures.seed_rows_per_s = Math.round(ROWS / ((Date.now() - started) / 1000));
    await cassandra.execute(`INSERT INTO ${keyspace}.bench_meta (k, rows) VALUES ('seeded', ${ROWS})`);
  } finally {
    await cassandra.shutdown();
  }
}

function sampleEventJson(i: number): string {
  return JSON.stringify(buildSyncEvent(COURSE, BIG_BATCH, `u${i}`, Date.now(), randomUUID()));
}

/** (1a) Kafka's own ProducerPerformance, from the same jars as the broker. */
function producerPerformance(topic: string, records: number, recordSize: number): number {
  const cp = path.join(root, 'infra/target/kafka/lib/*');
  const out = execFileSync(
    'java',
    [
      '-Xmx512m',
      '-cp',
      cp,
      'org.apache.kafka.tools.ProducerPerformance',
      '--topic',
      topic,
      '--num-records',
      String(records),
      '--record-size',
      String(recordSize),
      '--throughput',
      '-1',
      '--producer-props',
      'bootstrap.servers=127.0.0.1:9092',
      'acks=all',
      'enable.idempotence=true',
      'linger.ms=5',
      'batch.size=65536',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const last = out.trim().split('\n').pop() ?? '';
  const m = /([\d.]+) records\/sec/.exec(last);
  if (!m) throw new Error(`cannot read ProducerPerformance output: ${last}`);
  return Math.round(Number(m[1]));
}

/** (1b) A bare kafkajs producer: JSON events of the sync event's size, no Cassandra, no validation. */
async function bareKafkajs(kafka: Kafka, topic: string, records: number): Promise<number> {
  const producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const started = Date.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < records; i += 1000) {
    const messages = [];
    for (let j = i; j < Math.min(records, i + 1000); j++) messages.push({ key: `u${j}`, value: sampleEventJson(j) });
    inFlight.push(producer.send({ topic, acks: -1, messages }));
    if (inFlight.length >= 4) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const rate = records / ((Date.now() - started) / 1000);
  await producer.disconnect();
  return Math.round(rate);
}

function serverCpuMs(name: 'kafka' | 'cassandra'): number {
  return cpuMsOf(serverPid(name));
}

interface ServerCpu {
  cassandra: number;
  kafka: number;
  brokerThreads?: Map<string, ThreadCpu>;
}

/** The servers' CPU so far; with BENCH_BROKER_THREADS=1 also the broker's by thread. */
function serverCpu(): ServerCpu {
  const brokerPid = serverPid('kafka');
  return {
    cassandra: serverCpuMs('cassandra'),
    kafka: serverCpuMs('kafka'),
    brokerThreads:
      process.env.BENCH_BROKER_THREADS === '1' && brokerPid !== undefined ? threadCpuMs(brokerPid) : undefined,
  };
}

/** What Cassandra and the broker spent since `before`: ours and the peer's runs compared on the servers' side too. */
function serverCpuSince(before: ServerCpu): string {
  const s = (name: 'kafka' | 'cassandra') => ((serverCpuMs(name) - before[name]) / 1000).toFixed(1);
  const brokerPid = serverPid('kafka');
  const threads =
    before.brokerThreads && brokerPid !== undefined
      ? ` (broker by thread: ${threadCpuDelta(before.brokerThreads, threadCpuMs(brokerPid))})`
      : '';
  return `Cassandra ${s('cassandra')} CPU-s, broker ${s('kafka')} CPU-s${threads}`;
}

/** (2) The read ceiling: our reader, exactly as the processor reads, producing nothing. */
async function rawRead(
  batchId: string,
  env: Record<string, string> = {},
): Promise<{ rows: number; ms: number; rate: number; plan: string }> {
  const settings = benchSettings(env);
  const cassandra = createCassandra(settings.cassandra);
  await cassandra.connect();
  const reader = new EnrolmentReader(cassandra, keyspace, settings.processor);
  let rows = 0;
  let plan = '';
  const started = Date.now();
  const pages = reader.readBatch(COURSE, batchId, new AbortController().signal, { report: (r) => (plan = r.plan) });
  for await (const page of pages) rows += page.rows.length;
  const ms = Date.now() - started;
  await cassandra.shutdown();
  return { rows, ms, rate: Math.round(rows / (ms / 1000)), plan };
}

/**
 * CPU ms of each of a process's threads, summed by thread name with digits dropped (V8's
 * workers, libuv's pool, librdkafka's rdk:broker… threads), so the native share of CPU-s shows
 * beside what a JavaScript profile of the main thread sees.
 */
interface ThreadCpu {
  ms: number;
  threads: number;
  /** Times the threads went to sleep waiting (voluntary context switches): their wake-ups. */
  waits: number;
}

function threadCpuMs(pid: number): Map<string, ThreadCpu> {
  const out = new Map<string, ThreadCpu>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/\d+/g, '#');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const waits = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const sum = out.get(name) ?? { ms: 0, threads: 0, waits: 0 };
      out.set(name, { ms: sum.ms + ms, threads: sum.threads + 1, waits: sum.waits + waits });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

function threadCpuDelta(before: Map<string, ThreadCpu>, after: Map<string, ThreadCpu>): string {
  return [...after]
    .map(
      ([name, now]) =>
        [
          `${name} ×${now.threads}`,
          now.ms - (before.get(name)?.ms ?? 0),
          now.waits - (before.get(name)?.waits ?? 0),
        ] as const,
    )
    .filter(([, ms]) => ms > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms, waits]) => `${name} ${(ms / 1000).toFixed(2)} s (${waits} waits)`)
    .join(', ');
}

function startChild(args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let output = '';
  const nodeArgs = process.env.BENCH_PROCESSOR_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  if (env.BENCH_MEMORY_SPLIT_FILE) nodeArgs.push('--require', path.join(__dirname, 'memory-sampler.js'));
  // Through the launcher, as users start it (its malloc settings are part of the figure); it
  // execs node, so the child's pid is the processor's. Node's own arguments go in NODE_OPTIONS.
  const nodeOptions = [process.env.NODE_OPTIONS, ...nodeArgs].filter(Boolean).join(' ');
  const child = spawn(path.join(root, 'bin/enrolment-sync'), args, {
    cwd: root,
    env: { ...process.env, ...env, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const keep = process.env.BENCH_PROCESSOR_OUTPUT;
  if (keep) child.once('exit', () => writeFileSync(`${keep}.${child.pid}.log`, output));
  return { child, output: () => output };
}

/** The health endpoints' URL a processor logged (PROCESSOR_PORT=0 picks a free port). */
function healthUrlOf(output: string): string | undefined {
  return /"url":"(http:[^"]+)"[^\n]*"msg":"health endpoints listening"/.exec(output)?.[1];
}

/** A processor's /metrics text, or '' when it logged no health URL. */
async function metricsOf(output: string): Promise<string> {
  const url = healthUrlOf(output);
  return url ? (await fetch(`${url}/metrics`)).text() : '';
}

/** The sum of a metric's samples (every label set) that `pattern` picks out of a /metrics text. */
function sumMetric(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].reduce((total, m) => total + Number(m[1] ?? 0), 0);
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * SIGTERM, then its exit. A child that has exited already (a processor refusing its settings) has
 * no exit left to wait for: waiting for one hung the benchmark instead of reporting the failure.
 */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** Until the processor's log says it joined its group; fails at once, with its output, if it exits first. */
async function waitForJoin(started: { child: ChildProcess; output: () => string }): Promise<void> {
  await waitFor(
    () => {
      const { exitCode, signalCode } = started.child;
      if (exitCode !== null || signalCode !== null) {
        throw new Error(
          `processor exited (${exitCode ?? signalCode}) before joining its group:\n${started.output().slice(-2000)}`,
        );
      }
      return /joined consumer group/.test(started.output());
    },
    60000,
    'processor to join its group',
  );
}

/** Stops a child started by startChild and removes the topics of its run. */
async function stopChildAndTopics(child: ChildProcess, admin: Admin, settings: Settings): Promise<void> {
  await stopChild(child);
  const { trigger, output, deadLetter, checkpoints, tasks, status } = settings.topics;
  await admin
    .deleteTopics({ topics: [trigger, output, deadLetter, checkpoints, tasks, status] })
    .catch(() => undefined);
  await admin.disconnect();
}

async function endOffsetSum(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + Number(p.high), 0);
}

/**
 * Reads a topic from its beginning to the end it has now, as a read_committed consumer
 * (`readUncommitted: false`): aborted records and transaction markers are skipped. Calls
 * `onRecord` with each record's key and value; returns how many records it read.
 */
async function readCommitted(
  kafka: Kafka,
  topic: string,
  onRecord: (key: string, value: Buffer) => void,
  timeoutMs: number,
): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  let records = 0;
  await readToEnd(
    kafka,
    topic,
    ends.map((p) => ({ partition: p.partition, from: BigInt(p.low), to: BigInt(p.high) })),
    {
      groupId: `bench-verify-${randomUUID()}`,
      timeoutMs,
      consumer: { maxBytes: 64 << 20, maxBytesPerPartition: 16 << 20 },
      onRecord: (_partition, m) => {
        records++;
        onRecord(m.key?.toString() ?? '', m.value ?? Buffer.alloc(0));
      },
    },
  );
  return records;
}

interface OutputCheck {
  distinctUsers: number;
  records: number;
}

/**
 * Our expansion figures and the peer's are only worth something if every user got an event:
 * counts the distinct users (record keys) a read_committed consumer sees in `topic` and fails
 * loudly when they are not the batch's active users.
 */
async function verifyOutput(kafka: Kafka, topic: string, batchId: string, who: string): Promise<OutputCheck> {
  const expected = activeUsers(batchId);
  const users = new Set<string>();
  const started = Date.now();
  const records = await readCommitted(kafka, topic, (key) => users.add(key), 60_000 + expected / 5);
  const check = { distinctUsers: users.size, records };
  log(
    `  verified ${who}: ${users.size.toLocaleString()} distinct users in ${records.toLocaleString()} read_committed records ` +
      `(${expected.toLocaleString()} active in ${batchId}; read in ${Date.now() - started} ms)`,
  );
  if (users.size !== expected) {
    throw new Error(
      `VERIFICATION FAILED: ${who} wrote events for ${users.size} distinct users of ${batchId}, ` +
        `which has ${expected} active users (${records} records in ${topic})`,
    );
  }
  return check;
}

/** (9) Builds the plain-JVM peer with Maven (from Maven Central, cached in ~/.m2) when its jar is older than its sources. */
function buildPeer(): void {
  const sources = [
    path.join(PEER_DIR, 'pom.xml'),
    ...readdirSync(path.join(PEER_DIR, 'src'), { recursive: true, encoding: 'utf8' }).map((f) =>
      path.join(PEER_DIR, 'src', f),
    ),
  ];
  const built = existsSync(PEER_JAR) && existsSync(path.join(PEER_DIR, 'target/lib')) ? statSync(PEER_JAR).mtimeMs : 0;
  if (sources.every((f) => statSync(f).mtimeMs < built)) return;
  log('(9) building the plain-JVM peer: mvn -q -B -f bench/peer/pom.xml package');
  try {
    execFileSync('mvn', ['-q', '-B', '-f', path.join(PEER_DIR, 'pom.xml'), 'package'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`building the peer failed:\n${stdout ?? ''}${stderr ?? ''}`, { cause: err });
  }
}

interface PeerResult {
  rows: number;
  selected: number;
  events: number;
  ms: number;
  events_per_s: number;
  cpu_s: number;
  cpu_s_process: number;
  java: string;
  ok: boolean;
}

interface TriggerIdentity {
  triggerId: string;
  requestedAt: number;
}

/** (9) Runs the peer on one batch for one trigger, to `topic`; it verifies its own count and says so. */
async function runPeer(batchId: string, trigger: TriggerIdentity, topic: string): Promise<PeerResult> {
  const args = ['-Xmx512m', '-jar', PEER_JAR, '--keyspace', keyspace, '--course', COURSE, '--batch', batchId];
  args.push('--trigger-id', trigger.triggerId, '--requested-at', String(trigger.requestedAt), '--topic', topic);
  const child = spawn('java', args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  const line = stdout.trim().split('\n').pop() ?? '';
  if (code !== 0) throw new Error(`the peer exited with ${code}: ${line}\n${stderr.slice(-2000)}`);
  const result = JSON.parse(line) as PeerResult;
  if (!result.ok || result.events !== result.selected) {
    throw new Error(`the peer's count does not verify: ${line}`);
  }
  return result;
}

async function createOutputTopic(admin: Admin, prefix: string): Promise<string> {
  const topic = `${prefix}-${randomUUID().slice(0, 8)}`;
  await ensureTopics(admin, [{ topic, numPartitions: OUTPUT_PARTITIONS, replicationFactor: 1 }]);
  return topic;
}

/**
 * (9) The peer on the big batch, on a fresh topic; its output is then counted like ours. Its
 * trigger is a new one: the peer's events are those of another trigger than ours.
 */
async function peerExpansion(batchId: string): Promise<PeerResult & OutputCheck> {
  const kafka = new Kafka({ brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = await createOutputTopic(admin, 'bench-peer');
  try {
    const serversBefore = serverCpu();
    const peer = await runPeer(batchId, { triggerId: randomUUID(), requestedAt: Date.now() }, topic);
    log(
      `  peer: ${peer.events} events (${peer.rows} rows read, ${peer.selected} selected) in ${peer.ms} ms: ` +
        `${peer.events_per_s} events/s, ${peer.cpu_s} CPU-s (${peer.cpu_s_process} CPU-s for the whole JVM); ` +
        `its whole run: ${serverCpuSince(serversBefore)}`,
    );
    if (peer.selected !== activeUsers(batchId)) {
      throw new Error(
        `the peer selected ${peer.selected} users of ${batchId}, which has ${activeUsers(batchId)} active`,
      );
    }
    return { ...peer, ...(await verifyOutput(kafka, topic, batchId, 'the peer')) };
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

/**
 * (9) The peer builds events the way we do: for the same trigger (id and requestedAt) on the
 * same batch, its records must be ours byte for byte, key and value. Returns how many matched.
 */
async function peerCheck(batchId: string, ours: ExpansionResult): Promise<number> {
  const theirs = new Map<string, Buffer>();
  let theirRecords: number;
  const kafka = new Kafka({ brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = await createOutputTopic(admin, 'bench-peer-check');
  try {
    await runPeer(batchId, ours.trigger, topic);
    theirRecords = await readCommitted(kafka, topic, (key, value) => theirs.set(key, value), 60_000);
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
  const mine = ours.output ?? new Map<string, Buffer>();
  const problems: string[] = [];
  let same = 0;
  for (const [key, value] of mine) {
    const other = theirs.get(key);
    if (other === undefined) problems.push(`${key}: no event from the peer`);
    else if (!other.equals(value)) problems.push(`${key}: ours ${value.toString()} ≠ peer's ${other.toString()}`);
    else same++;
  }
  for (const key of theirs.keys()) if (!mine.has(key)) problems.push(`${key}: only the peer wrote an event`);
  const expected = activeUsers(batchId);
  if (mine.size !== expected) problems.unshift(`we wrote ${mine.size} events, the batch has ${expected} active users`);
  if (ours.check?.records !== mine.size)
    problems.unshift(`we wrote ${ours.check?.records} records for ${mine.size} users`);
  if (theirRecords !== theirs.size) problems.unshift(`the peer wrote ${theirRecords} records for ${theirs.size} users`);
  if (problems.length > 0) {
    throw new Error(
      `PEER CHECK FAILED on ${batchId}: ${same} of ${mine.size} events identical (${theirs.size} from the peer); ` +
        problems.slice(0, 5).join('; '),
    );
  }
  log(`  the peer's ${theirs.size} events for trigger ${ours.trigger.triggerId} are ours, byte for byte`);
  return same;
}

/**
 * (3), (4), (6), (7): a fresh processor process expands one whole-batch trigger. Time runs from
 * the trigger's acknowledgement until a read_committed reader of the status topic sees the
 * trigger done: its last part (the trigger's own or its last task's) is written in the same
 * transaction as its last events.
 */
interface ExpansionResult {
  /** Events each processor process produced. */
  shares: number[];
  ms: number;
  rate: number;
  stats: ProcStats;
  rebalances: number;
  events: number;
  transactions: number;
  trigger: TriggerIdentity;
  /** verify 'count' or 'capture': what a read_committed consumer of the output saw. */
  check?: OutputCheck;
  /** verify 'capture': every output record, by key. */
  output?: Map<string, Buffer>;
}

async function expansion(
  batchId: string,
  users: number,
  guarantee: 'exactly_once' | 'at_least_once' = 'exactly_once',
  extraEnv: Record<string, string> = {},
  verify: 'none' | 'count' | 'capture' = 'none',
  processes = 1,
): Promise<ExpansionResult> {
  const settings = benchSettings({ LOG_LEVEL: 'info' });
  const kafka = new Kafka({ brokers: settings.kafka.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, topicSpecs(settings.topics));
  const env = {
    SYNC_ENV: settings.env,
    CASSANDRA_KEYSPACE: keyspace,
    LOG_LEVEL: 'info',
    SYNC_PROCESSING_GUARANTEE: guarantee,
    PROCESSOR_PORT: '0',
    ...extraEnv,
  };
  const status = new StatusStore(kafka, admin, settings.topics.status, createLogger('silent'), `bench-${settings.env}`);
  await status.start();
  const children = Array.from({ length: processes }, () => startChild(['processor'], env));
  const { child } = children[0] as ReturnType<typeof startChild>;
  const joinsOf = (out: () => string) => (out().match(/joined consumer group/g) ?? []).length;
  try {
    for (const c of children) await waitForJoin(c);
    // With several members, let the group settle on all of them before the trigger arrives.
    if (processes > 1) await new Promise((r) => setTimeout(r, 3000));
    const joinsBefore = children.map((c) => joinsOf(c.output));
    // What the processor spends with nothing to do (consumers polling, librdkafka's timers),
    // over a second before the trigger: the part of the window's CPU that is time, not events.
    const idleStart = procStats(child.pid as number).cpuMs;
    await new Promise((r) => setTimeout(r, 1000));
    const idleMsPerS = procStats(child.pid as number).cpuMs - idleStart;
    const cpuBefore = children.map((c) => procStats(c.child.pid as number).cpuMs);
    const threadsBefore = threadCpuMs(child.pid as number);
    const serversBefore = serverCpu();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const trigger = { triggerId: randomUUID(), requestedAt: Date.now(), courseId: COURSE, batchId, source: 'batch' };
    const started = Date.now();
    await producer.send({
      topic: settings.topics.trigger,
      acks: -1,
      messages: [{ key: trigger.triggerId, value: JSON.stringify(trigger) }],
    });
    await producer.disconnect();
    // The trigger's offset is committed once it is expanded or, with fan-out, split into tasks:
    // the trigger's status (written in the transaction of the work it reports) says when all of
    // it is done, and how many events it produced.
    let lastProgress = Date.now();
    let final: TriggerStatus | undefined;
    await waitFor(
      async () => {
        if (Date.now() - lastProgress > 5000) {
          lastProgress = Date.now();
          log(
            `  … ${(await endOffsetSum(admin, settings.topics.output)).toLocaleString()} / ${users.toLocaleString()} events`,
          );
        }
        final = await status.get(trigger.triggerId);
        return final?.state === 'done' || final?.state === 'failed';
      },
      30 * 60 * 1000,
      'the trigger to be done',
    );
    const ms = Date.now() - started;
    const each = children.map((c) => procStats(c.child.pid as number));
    log(
      `  processor CPU by thread: ${threadCpuDelta(threadsBefore, threadCpuMs(child.pid as number))}; ` +
        `idle before the trigger ${idleMsPerS} CPU-ms/s; load ${os.loadavg()[0]?.toFixed(1)}; ` +
        serverCpuSince(serversBefore),
    );
    const stats: ProcStats = {
      cpuMs: each.reduce((n, st, i) => n + st.cpuMs - (cpuBefore[i] as number), 0),
      peakRssMb: Math.max(...each.map((st) => st.peakRssMb)),
    };
    const metricsTexts = await Promise.all(children.map((c) => metricsOf(c.output())));
    const shares = metricsTexts.map((text) => sumMetric(text, /^sync_events_produced_total\{[^}]*\} (\d+)/gm));
    if (final?.state !== 'done') throw new Error(`trigger for ${batchId} ${final?.state}: ${JSON.stringify(final)}`);
    const events = final.eventsProduced;
    if (events !== users) throw new Error(`expected ${users} events for ${batchId}, the processor reports ${events}`);
    const transactions = sumMetric(metricsTexts[0] ?? '', /^sync_transactions_committed_total\{[^}]*\} (\d+)/gm);
    const rebalances = children.reduce((n, c, i) => n + joinsOf(c.output) - (joinsBefore[i] as number), 0);
    let check: OutputCheck | undefined;
    let records: Map<string, Buffer> | undefined;
    if (verify === 'count') {
      check = await verifyOutput(kafka, settings.topics.output, batchId, `our ${guarantee} expansion`);
    } else if (verify === 'capture') {
      const captured = new Map<string, Buffer>();
      const n = await readCommitted(kafka, settings.topics.output, (key, value) => captured.set(key, value), 60_000);
      check = { distinctUsers: captured.size, records: n };
      records = captured;
    }
    return {
      ms,
      rate: Math.round(events / (ms / 1000)),
      stats,
      rebalances,
      shares,
      events,
      transactions,
      trigger: { triggerId: trigger.triggerId, requestedAt: trigger.requestedAt },
      check,
      output: records,
    };
  } finally {
    await status.stop();
    for (const c of children.slice(1)) await stopChild(c.child);
    await stopChildAndTopics(child, admin, settings);
  }
}

/** The Kafka clients the processor ships (KAFKA_CLIENT); kafkajs is the default. */
const CLIENTS = ['kafkajs', 'confluent'] as const;
type ClientName = (typeof CLIENTS)[number];

interface ClientRun {
  client: ClientName;
  rate: number;
  cpuSPerMillion: number;
  distinctUsers: number;
}

/** (3c) The big batch expanded exactly once with one client: events/s and processor CPU-s per 1M events. */
async function clientExpansion(
  client: ClientName,
  guarantee: 'exactly_once' | 'at_least_once' = 'exactly_once',
): Promise<ClientRun> {
  log(`(3c) expansion of the ${TARGET.toLocaleString()}-user batch, ${guarantee}, KAFKA_CLIENT=${client}`);
  const r = await expansion(BIG_BATCH, TARGET, guarantee, { KAFKA_CLIENT: client }, 'count');
  const run = {
    client,
    rate: r.rate,
    cpuSPerMillion: Number(((r.stats.cpuMs / 1000) * (1_000_000 / Math.max(1, r.events))).toFixed(1)),
    distinctUsers: r.check?.distinctUsers ?? NaN,
  };
  if (run.distinctUsers !== activeUsers(BIG_BATCH)) {
    throw new Error(
      `KAFKA_CLIENT=${client}: ${run.distinctUsers} distinct users, the batch has ${activeUsers(BIG_BATCH)}`,
    );
  }
  log(`  ${r.events} events in ${r.ms} ms: ${run.rate} events/s, ${run.cpuSPerMillion} CPU-s per 1M events`);
  return run;
}

function recordClientRuns(runs: ClientRun[]): void {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  for (const client of CLIENTS) {
    const mine = runs.filter((r) => r.client === client);
    if (mine.length === 0) continue;
    figures[`expand_big_${client}_events_per_s`] = median(mine.map((r) => r.rate));
    figures[`cpu_s_per_million_events_${client}`] = median(mine.map((r) => r.cpuSPerMillion));
    figures[`expand_big_${client}_distinct_users`] = Math.min(...mine.map((r) => r.distinctUsers));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/**
 * Which set-ups (5) measures, from BENCH_API_MODES (comma-separated; default `run,api`, what
 * `make bench` reports): `run` (API and processor in one process), `split` (`api` and
 * `processor` as two processes on this box), `api` (the API process alone).
 */
function apiModes(): Set<string> {
  return new Set((process.env.BENCH_API_MODES ?? 'run,api').split(',').map((m) => m.trim()));
}

async function topicsFor(admin: Admin, settings: Settings): Promise<void> {
  // On a busy broker a fresh topic's leader can take longer than kafkajs waits for it.
  for (let attempt = 1; ; attempt++) {
    try {
      await ensureTopics(admin, topicSpecs(settings.topics));
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function waitReady(port: string, what: string): Promise<void> {
  await waitFor(
    async () =>
      await fetch(`http://127.0.0.1:${port}/ready`)
        .then((r) => r.ok)
        .catch(() => false),
    60000,
    what,
  );
}

/** (5) API 200 → event visible to a read_committed consumer; then throughput at p99 ≤ 50 ms. */
async function apiLatencyAndThroughput(): Promise<void> {
  const modes = apiModes();
  const kafka = new Kafka({ brokers: benchSettings().kafka.brokers, logLevel: logLevel.NOTHING });
  if (modes.has('run')) await apiWithProcessor(kafka);
  if (modes.has('split')) await apiSplit(kafka);
  if (modes.has('api')) await apiAlone(kafka);
}

function recordApiFigures(prefix: string, best: ApiLoadResult): void {
  figures[`${prefix}rps_at_p99_le_50ms`] = best.rps;
  figures[`${prefix}p99_ms_at_best`] = best.p99;
  figures[`${prefix}connections_at_best`] = best.connections;
  figures[`${prefix}cpu_ms_per_request_at_best`] = best.cpuMsPerRequest;
  [figures[`${prefix}peak_rps`], figures[`${prefix}peak_p99_ms`]] = best.peak;
  for (const [proc, ms] of Object.entries(best.cpuByProcess)) figures[`${prefix}cpu_ms_per_request_${proc}`] = ms;
}

async function apiWithProcessor(kafka: Kafka): Promise<void> {
  const settings = benchSettings();
  const admin = kafka.admin();
  await admin.connect();
  await topicsFor(admin, settings);
  const port = String(19000 + Math.floor(Math.random() * 1000));
  const started = startChild(['run'], {
    SYNC_ENV: settings.env,
    CASSANDRA_KEYSPACE: keyspace,
    API_PORT: port,
    LOG_LEVEL: 'info',
  });
  const { child } = started;
  const arrivals = new Map<string, number>();
  const consumer = kafka.consumer({ groupId: `bench-latency-${randomUUID()}` });
  try {
    const url = `http://127.0.0.1:${port}/v1/content/state/update`;
    await waitReady(port, 'API');
    await waitForJoin(started);
    await consumer.connect();
    await consumer.subscribe({ topics: [settings.topics.output], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => void arrivals.set(message.key?.toString() ?? '', Date.now()),
    });
    await new Promise((r) => setTimeout(r, 3000)); // let the watcher's own group settle

    const latencies: number[] = [];
    const triggerIds: string[] = [];
    for (let i = 0; i < 200; i++) {
      const userId = `s${i}`;
      const started = Date.now();
      const res = await fetch(url, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ request: { userId, batchId: SMALL_BATCH, courseId: COURSE } }),
      });
      if (res.status !== 200) throw new Error(`API answered ${res.status}`);
      triggerIds.push(((await res.json()) as { result: { triggerId: string } }).result.triggerId);
      await waitFor(() => arrivals.has(userId), 10000, `event for ${userId}`);
      latencies.push((arrivals.get(userId) as number) - started);
    }
    // Status queries of those triggers, one at a time, as a person or a script polls them.
    const statusMs: number[] = [];
    for (const triggerId of triggerIds) {
      const t0 = process.hrtime.bigint();
      const r = await fetch(`http://127.0.0.1:${port}/v1/content/state/sync/${triggerId}`);
      if (r.status !== 200) throw new Error(`status of ${triggerId}: HTTP ${r.status}`);
      await r.arrayBuffer();
      statusMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    statusMs.sort((a, b) => a - b);
    figures.status_query_p50_ms = Number(percentile(statusMs, 50).toFixed(1));
    figures.status_query_p99_ms = Number(percentile(statusMs, 99).toFixed(1));
    log(`status query: p50 ${figures.status_query_p50_ms} ms, p99 ${figures.status_query_p99_ms} ms`);
    latencies.sort((a, b) => a - b);
    figures.single_user_e2e_p50_ms = percentile(latencies, 50);
    figures.single_user_e2e_p99_ms = percentile(latencies, 99);
    log(`single-user sync: p50 ${figures.single_user_e2e_p50_ms} ms, p99 ${figures.single_user_e2e_p99_ms} ms`);

    recordApiFigures(
      'api_',
      await apiLoad(url, 'API and processor', { api: child.pid }, [`http://127.0.0.1:${port}/metrics`]),
    );
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await stopChildAndTopics(child, admin, settings);
  }
}

/**
 * `enrolment-sync api` and `enrolment-sync processor` as separate processes on this box:
 * BENCH_API_PROCESSORS (1) processor members in one group, as a deployment with several would
 * have. With more than one, each member's share of the triggers is logged: the API's sticky
 * partitions (API_STICKY_PARTITION_MS) feed one member at a time, in turns.
 */
async function apiSplit(kafka: Kafka): Promise<void> {
  const settings = benchSettings();
  const admin = kafka.admin();
  await admin.connect();
  await topicsFor(admin, settings);
  const port = String(19000 + Math.floor(Math.random() * 1000));
  const env = { SYNC_ENV: settings.env, CASSANDRA_KEYSPACE: keyspace, LOG_LEVEL: 'info' };
  const members = Number(process.env.BENCH_API_PROCESSORS ?? 1);
  const processors = Array.from({ length: members }, () => startChild(['processor'], { ...env, PROCESSOR_PORT: '0' }));
  const api = startChild(['api'], { ...env, API_PORT: port });
  try {
    await waitReady(port, 'API (split)');
    for (const p of processors) await waitForJoin(p);
    // Every member's partitions assigned, so the load does not start inside a rebalance.
    await waitFor(
      () => processors.every((p) => /"msg":"processor running"/.test(p.output())),
      60000,
      'the group to settle',
    );
    await new Promise((r) => setTimeout(r, 3000));
    const healthUrls = processors.map((p) => healthUrlOf(p.output()));
    const url = `http://127.0.0.1:${port}/v1/content/state/update`;
    recordApiFigures(
      members > 1 ? `api_split_${members}_processors_` : 'api_split_',
      await apiLoad(
        url,
        members > 1 ? `API + ${members} processors, ${members + 1} processes` : 'API + processor, two processes',
        { api: api.child.pid, processors: processors.map((p) => p.child.pid) },
        [`http://127.0.0.1:${port}/metrics`, ...healthUrls.flatMap((u) => (u ? [`${u}/metrics`] : []))],
      ),
    );
  } finally {
    for (const p of processors) await stopChild(p.child);
    await stopChildAndTopics(api.child, admin, settings);
  }
}

/**
 * The API process alone (`enrolment-sync api`), as it runs when deployed apart from the
 * processor: the triggers pile up unread, which costs the API nothing.
 */
async function apiAlone(kafka: Kafka): Promise<void> {
  const aloneSettings = benchSettings();
  const aloneAdmin = kafka.admin();
  await aloneAdmin.connect();
  await topicsFor(aloneAdmin, aloneSettings);
  const alonePort = String(19000 + Math.floor(Math.random() * 1000));
  const alone = startChild(['api'], {
    SYNC_ENV: aloneSettings.env,
    CASSANDRA_KEYSPACE: keyspace,
    API_PORT: alonePort,
    LOG_LEVEL: 'info',
  });
  try {
    await waitReady(alonePort, 'API alone');
    const url = `http://127.0.0.1:${alonePort}/v1/content/state/update`;
    recordApiFigures('api_alone_', await apiLoad(url, 'API alone', { api: alone.child.pid }));
  } finally {
    await stopChildAndTopics(alone.child, aloneAdmin, aloneSettings);
  }
}

interface ApiLoadResult {
  rps: number;
  p99: number;
  connections: number;
  cpuMsPerRequest: number;
  /**
   * At the best level: CPU-ms per request of each process (api, processor, kafka, cassandra,
   * loadgen), net of what each spent in an idle window just before.
   */
  cpuByProcess: Record<string, number>;
  peak: [number, number];
}

/**
 * Single-user requests from a growing number of connections (BENCH_API_CONNECTIONS, default
 * 4,8,16,24,32,48,64), BENCH_API_SECONDS (8) each; the best rate whose p99 is ≤ 50 ms with every
 * answer a 200. CPU per request is read from /proc for each process on the path: the server
 * process(es), the broker, Cassandra and this one (the load generator), since on two cores they
 * all share the same CPU budget.
 */
async function apiLoad(
  url: string,
  what: string,
  server: { api: number | undefined; processors?: Array<number | undefined> },
  metricsUrls: string[] = [],
): Promise<ApiLoadResult> {
  const levels = (process.env.BENCH_API_CONNECTIONS ?? '4,8,16,24,32,48,64').split(',').map(Number);
  const seconds = Number(process.env.BENCH_API_SECONDS ?? 8);
  const pids: Record<string, number | undefined> = {
    api: server.api,
    ...Object.fromEntries(
      (server.processors ?? []).map((pid, i) => [i === 0 ? 'processor' : `processor${i + 1}`, pid]),
    ),
    kafka: serverPid('kafka'),
    cassandra: serverPid('cassandra'),
  };
  const cpuNow = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [name, pid] of Object.entries(pids)) out[name] = pid === undefined ? NaN : procStats(pid).cpuMs;
    const own = process.cpuUsage();
    out.loadgen = (own.user + own.system) / 1000;
    return out;
  };
  let best: Omit<ApiLoadResult, 'peak'> = { rps: 0, p99: 0, connections: 0, cpuMsPerRequest: 0, cpuByProcess: {} };
  // The highest rate whatever its p99: on a loaded machine the row above may read 0.
  let peak: [number, number] = [0, 0];
  const idleSeconds = Number(process.env.BENCH_API_IDLE_SECONDS ?? 2);
  for (const connections of levels) {
    let n = 0;
    // Every process spends CPU without requests too (the broker and Cassandra on whatever else
    // runs on this box): its CPU over an idle window just before the step, pro rata, is
    // subtracted in the per-process figures.
    const idleStart = cpuNow();
    const idleT0 = performance.now();
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const idleEnd = cpuNow();
    const idleMs = performance.now() - idleT0;
    const t0 = performance.now();
    const countsBefore = metricsUrls.length > 0 ? await transactionCounts(metricsUrls) : undefined;
    const before = cpuNow();
    const result = await autocannon({
      url,
      method: 'PATCH',
      connections,
      duration: seconds,
      headers: { 'content-type': 'application/json' },
      requests: [
        {
          setupRequest: (req) => ({
            ...req,
            body: JSON.stringify({ request: { userId: `s${n++ % SMALL}`, batchId: SMALL_BATCH, courseId: COURSE } }),
          }),
        },
      ],
    });
    const after = cpuNow();
    const loadMs = performance.now() - t0;
    const countsAfter = metricsUrls.length > 0 ? await transactionCounts(metricsUrls) : undefined;
    const requests = Math.max(1, result.requests.total);
    const cpuByProcess: Record<string, number> = {};
    let serverCpuMs = 0;
    for (const name of Object.keys(after)) {
      const used = (after[name] as number) - (before[name] as number);
      if (name === 'api' || name.startsWith('processor')) serverCpuMs += used;
      // Net of what the process spends without requests (its own timers, consumers, heartbeats;
      // for the servers, everyone else's work): the cost a request adds, which is what 2,000
      // requests/s would multiply. The load generator has no background.
      const background =
        name === 'loadgen' ? 0 : (((idleEnd[name] as number) - (idleStart[name] as number)) / idleMs) * loadMs;
      cpuByProcess[name] = Number((Math.max(0, used - background) / requests).toFixed(3));
    }
    const rps = Math.round(result.requests.average);
    const p99 = result.latency.p99;
    const non2xx = result.non2xx;
    // The server process(es) as measured, background included (the figure earlier runs recorded).
    const cpuMsPerRequest = Number((serverCpuMs / requests).toFixed(2));
    const total = Object.values(cpuByProcess).reduce((a, b) => a + (Number.isNaN(b) ? 0 : b), 0);
    log(
      `${what}: ${connections} connections → ${rps} req/s, p50 ${result.latency.p50} ms, p99 ${p99} ms, ` +
        `non-2xx ${non2xx}, errors ${result.errors}; server CPU ${cpuMsPerRequest} ms/request; net of idle ` +
        Object.entries(cpuByProcess)
          .map(([k, v]) => `${k} ${v.toFixed(2)}`)
          .join(', ') +
        `, all ${total.toFixed(2)}; load ${os.loadavg()[0]?.toFixed(1)}` +
        (countsBefore && countsAfter ? `; ${describeTransactions(countsBefore, countsAfter, loadMs)}` : ''),
    );
    if (non2xx === 0 && result.errors === 0 && p99 <= 50 && rps > best.rps)
      best = { rps, p99, connections, cpuMsPerRequest, cpuByProcess };
    if (non2xx === 0 && result.errors === 0 && rps > peak[0]) peak = [rps, p99];
  }
  return { ...best, peak };
}

/** The counters that say how many requests share a transaction, from a `run` process's /metrics. */
interface TransactionCounts {
  /** Triggers processed by each process asked, in the order of its metrics URL. */
  triggersByProcess: number[];
  waveTransactions: number;
  triggersProcessed: number;
  apiSends: number;
  apiTriggers: number;
}

/** Summed over the processes that serve the API's requests (`run`; or `api` and its processors). */
async function transactionCounts(metricsUrls: string[]): Promise<TransactionCounts> {
  const texts = await Promise.all(
    metricsUrls.map((u) =>
      fetch(u)
        .then((r) => r.text())
        .catch(() => ''),
    ),
  );
  const sum = (pattern: RegExp): number => texts.reduce((total, text) => total + sumMetric(text, pattern), 0);
  return {
    triggersByProcess: texts.map((text) => sumMetric(text, /^sync_triggers_processed_total\{[^}]*\} (\S+)$/gm)),
    waveTransactions: sum(/^sync_transactions_committed_total\{kind="wave"\} (\S+)$/gm),
    triggersProcessed: sum(/^sync_triggers_processed_total\{[^}]*\} (\S+)$/gm),
    apiSends: sum(/^sync_api_triggers_per_send_count\{[^}]*outcome="committed"[^}]*\} (\S+)$/gm),
    apiTriggers: sum(/^sync_api_triggers_per_send_sum\{[^}]*outcome="committed"[^}]*\} (\S+)$/gm),
  };
}

function describeTransactions(before: TransactionCounts, after: TransactionCounts, ms: number): string {
  const waves = after.waveTransactions - before.waveTransactions;
  const triggers = after.triggersProcessed - before.triggersProcessed;
  const sends = after.apiSends - before.apiSends;
  const published = after.apiTriggers - before.apiTriggers;
  const per = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(1) : 'n/a');
  // With several processor members (the split set-up), how the triggers fell between them.
  const byMember = after.triggersByProcess.slice(1).map((n, i) => n - (before.triggersByProcess[i + 1] ?? 0));
  const shares =
    byMember.length > 1 && triggers > 0
      ? `; members' shares of the triggers ${byMember.map((n) => (n / triggers).toFixed(2)).join(' / ')}`
      : '';
  return (
    `processor ${per(triggers, waves)} triggers per wave transaction (${Math.round((waves * 1000) / ms)}/s), ` +
    `API ${per(published, sends)} triggers per send (${Math.round((sends * 1000) / ms)}/s)${shares}`
  );
}

function versions(): Record<string, string> {
  const pkg = (name: string): string =>
    JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  const jar = (prefix: string, dir: string): string =>
    readdirSync(path.join(root, 'infra/target', dir, 'lib'))
      .find((f) => f.startsWith(prefix))
      ?.replace(/\.jar$/, '') ?? '?';
  const peerJar = (prefix: string): string =>
    readdirSync(path.join(PEER_DIR, 'target/lib'))
      .find((f) => f.startsWith(prefix))
      ?.replace(/\.jar$/, '') ?? '?';
  return {
    node: process.version,
    kafkajs: pkg('kafkajs'),
    'cassandra-driver': pkg('cassandra-driver'),
    kafka: jar('kafka_2.13-', 'kafka'),
    cassandra: jar('cassandra-all-', 'cassandra'),
    'peer java': peerJava || '?',
    'peer driver': peerJar('java-driver-core-'),
    'peer client': peerJar('kafka-clients-'),
  };
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || !(b > 0) ? 'n/a' : (a / b).toFixed(2);
}

function report(): void {
  const f = figures;
  const num = (k: string): number => f[k] ?? NaN;
  const readCeiling = num('raw_read_big_rows_per_s');
  const ratioB = num('expand_big_events_per_s') / Math.min(num('kafkajs_events_per_s'), readCeiling);
  const ratioA = num('expand_big_events_per_s') / Math.min(num('producer_perf_records_per_s'), readCeiling);
  f.ratio_expand_vs_min_kafkajs_read = Number(ratioB.toFixed(3));
  f.ratio_expand_vs_min_producerperf_read = Number(ratioA.toFixed(3));
  const rows: Array<[string, string, string]> = [
    [
      '(1a) Kafka ProducerPerformance',
      `${f.producer_perf_records_per_s} records/s`,
      `acks=all, idempotent, ${f.event_bytes} B records`,
    ],
    ['(1b) bare kafkajs', `${f.kafkajs_events_per_s} events/s`, 'JSON sync events, 1,000/send, 4 in flight'],
    [
      `(2) raw read, ${TARGET.toLocaleString()}-user batch`,
      `${f.raw_read_big_rows_per_s} rows/s`,
      `plan ${notes[0] ?? ''}`,
    ],
    ['(2) raw read, 1,000-user batch', `${f.raw_read_small_ms} ms`, `plan ${notes[1] ?? ''}`],
    [
      `(3) expansion, ${TARGET.toLocaleString()} users`,
      `${f.expand_big_events_per_s} events/s`,
      `${f.expand_big_ms} ms trigger → done (its status)`,
    ],
    ['(3) expansion, 10,000 users', `${f.expand_mid_events_per_s} events/s`, `${f.expand_mid_ms} ms`],
    ['(8) expansion, 1,000 users', `${f.expand_small_ms} ms`, 'trigger → last event committed'],
    ['(4) processor peak RSS, 10,000 users', `${f.rss_mid_mb} MB`, 'VmHWM of a fresh processor'],
    [`(4) processor peak RSS, ${TARGET.toLocaleString()} users`, `${f.rss_big_mb} MB`, ''],
    [
      '(5) single-user sync p50 / p99',
      `${f.single_user_e2e_p50_ms} / ${f.single_user_e2e_p99_ms} ms`,
      'API 200 → event read_committed',
    ],
    [
      '(5) API throughput at p99 ≤ 50 ms',
      `${f.api_rps_at_p99_le_50ms} req/s`,
      `p99 ${f.api_p99_ms_at_best} ms, ${f.api_connections_at_best} connections, ${f.api_cpu_ms_per_request_at_best} CPU-ms/request; API and processor in one process (\`run\`); peak ${f.api_peak_rps} req/s at p99 ${f.api_peak_p99_ms} ms`,
    ],
    [
      '(5) API alone, throughput at p99 ≤ 50 ms',
      `${f.api_alone_rps_at_p99_le_50ms} req/s`,
      `p99 ${f.api_alone_p99_ms_at_best} ms, ${f.api_alone_connections_at_best} connections, ${f.api_alone_cpu_ms_per_request_at_best} CPU-ms/request; \`enrolment-sync api\`, no processor; peak ${f.api_alone_peak_rps} req/s at p99 ${f.api_alone_peak_p99_ms} ms`,
    ],
    [
      `(3) expansion, ${TARGET.toLocaleString()} users, at least once`,
      `${f.expand_big_alo_events_per_s} events/s`,
      `${f.expand_big_alo_ms} ms; (3) above is exactly once`,
    ],
    [
      '(3) exactly once ÷ at least once',
      `${f.ratio_eos_vs_alo}`,
      `target ≥ 0.9; ${f.txn_max_records} events per transaction, ${f.eos_transactions_per_s} transactions/s`,
    ],
    [
      '(3) exactly once, 2,000 / 10,000 events per transaction',
      `${f.expand_big_eos_txn_2000_events_per_s} / ${f.expand_big_eos_txn_10000_events_per_s} events/s`,
      'the default (3) is 50,000 or 1 s, whichever comes first',
    ],
    [
      '(3) distinct users read_committed, exactly / at least once',
      `${f.expand_big_distinct_users} / ${f.expand_big_alo_distinct_users}`,
      `verified: the batch has ${activeUsers(BIG_BATCH)} active users`,
    ],
    [
      '(9) the group: 1 / 2 / 3 processor processes',
      `${f.group_1_events_per_s} / ${f.group_2_events_per_s} / ${f.group_3_events_per_s} events/s`,
      `CPU-s per 1M events ${f.group_1_cpu_s_per_million} / ${f.group_2_cpu_s_per_million} / ${f.group_3_cpu_s_per_million}; smallest share with 3: ${f.group_3_min_share}`,
    ],
    [
      '(11) unit costs: Cassandra per 1M scanned rows / broker per 1M events',
      `${f.cassandra_cpu_s_per_million_scanned_rows} / ${f.kafka_cpu_s_per_million_events} CPU-s`,
      'server processes measured around (2) scan and (3); see docs/scaling.md',
    ],
    [
      '(10) status query p50 / p99',
      `${f.status_query_p50_ms} / ${f.status_query_p99_ms} ms`,
      'GET /v1/content/state/sync/{triggerId}, read-your-writes',
    ],
    ['(6) rebalances during (3)', `${f.rebalances_during_expand}`, ''],
    ['(7) processor CPU per 1,000,000 events', `${f.cpu_s_per_million_events} s`, 'user + system'],
    ...CLIENTS.map((client): [string, string, string] => [
      `(3c) exactly once, KAFKA_CLIENT=${client}: events/s; CPU-s per 1M events`,
      `${f[`expand_big_${client}_events_per_s`]}; ${f[`cpu_s_per_million_events_${client}`]} s`,
      `÷ peer ${ratio(f[`expand_big_${client}_events_per_s`], f.peer_events_per_s)} events/s, ` +
        `${ratio(f[`cpu_s_per_million_events_${client}`], f.peer_cpu_s_per_million_events)} CPU; ` +
        `÷ kafkajs ${ratio(f[`expand_big_${client}_events_per_s`], f.expand_big_kafkajs_events_per_s)} events/s, ` +
        `${ratio(f[`cpu_s_per_million_events_${client}`], f.cpu_s_per_million_events_kafkajs)} CPU; ` +
        `${f[`expand_big_${client}_distinct_users`]} distinct users`,
    ]),
    [
      `(9) plain-JVM peer, ${TARGET.toLocaleString()} users`,
      `${f.peer_events_per_s} events/s`,
      `${f.peer_ms} ms scan → last ack; Java driver scan, 32 ranges, 8 in flight, page 5,000 → kafka-clients, acks=all, idempotent, lz4, linger 50 ms, 1 MiB batches`,
    ],
    [
      '(9) peer CPU per 1,000,000 events',
      `${f.peer_cpu_s_per_million_events} s`,
      `its JVM during the scan (${f.peer_process_cpu_s_per_million_events} s with start-up); ${f.peer_distinct_users} distinct users read_committed`,
    ],
    ['(9) ours ÷ peer, events/s', `${f.ratio_events_per_s_ours_vs_peer}`, '(3) ÷ peer; target ≥ 1.0'],
    [
      '(9) ours ÷ peer, CPU per 1,000,000 events',
      `${f.ratio_cpu_per_million_ours_vs_peer}`,
      '(7) ÷ peer; target: (7) ≤ 7 s',
    ],
    [
      '(9) peer events identical to ours, 1,000 users',
      `${f.peer_identical_events_small} / ${SMALL}`,
      'byte for byte, key and value, for the same triggerId and requestedAt',
    ],
    ['(3) ÷ min((1b), (2))', `${ratioB.toFixed(2)}`, 'target ≥ 0.8'],
    ['(3) ÷ min((1a), (2))', `${ratioA.toFixed(2)}`, ''],
  ];
  const table = ['| figure | value | note |', '| --- | --- | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join(
    '\n',
  );
  console.log(`\n${table}\n`);
  const v = versions();
  const header =
    `Run ${new Date().toISOString()} · BENCH_SIZE=${size} (${ROWS.toLocaleString()} rows, ${TARGET.toLocaleString()}-user batch) · ` +
    `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB · ` +
    Object.entries(v)
      .map(([k, val]) => `${k} ${val}`)
      .join(', ');
  const docPath = path.join(root, 'docs/benchmarks.md');
  let doc: string;
  try {
    doc = readFileSync(docPath, 'utf8');
  } catch {
    doc = '# Benchmarks\n\nWritten by `make bench` (bench/bench.ts). Analysis below the latest figures.\n';
  }
  const marker = `<!-- bench:${size} -->`;
  const section = `${marker}\n## Latest run, BENCH_SIZE=${size}\n\n${header}\n\n${table}\n${marker}`;
  const re = new RegExp(`${marker}[\\s\\S]*?${marker}`);
  doc = re.test(doc) ? doc.replace(re, section) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(docPath, doc);
  const jsonPath = path.join(root, 'docs/benchmarks.json');
  let all: Record<string, unknown>;
  try {
    all = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch {
    all = {};
  }
  all[size] = {
    date: new Date().toISOString(),
    rows: ROWS,
    target_users: TARGET,
    cores: os.cpus().length,
    versions: v,
    ...f,
  };
  writeFileSync(jsonPath, `${JSON.stringify(all, null, 2)}\n`);
  log(`written to docs/benchmarks.md and docs/benchmarks.json`);
}

async function main(): Promise<void> {
  log(
    `BENCH_SIZE=${size}: ${ROWS.toLocaleString()} rows, target batch ${TARGET.toLocaleString()} users, keyspace ${keyspace}`,
  );
  await seed();
  if (process.argv.includes('--expansions')) {
    await expansionsOnly();
    return;
  }
  if (process.argv.includes('--api')) {
    // Only (5), printed and not written to docs/: for comparing API changes run against run.
    log('(5) API latency and throughput');
    await apiLatencyAndThroughput();
    console.log(JSON.stringify(figures, null, 2));
    return;
  }
  if (!process.argv.includes('--clients') || process.env.BENCH_PEER === '1') buildPeer();
  if (process.argv.includes('--peer-check')) {
    log('(9) the peer against ours, 1,000-user batch');
    const ours = await expansion(SMALL_BATCH, SMALL, 'exactly_once', {}, 'capture');
    await peerCheck(SMALL_BATCH, ours);
    return;
  }
  if (process.argv.includes('--clients')) {
    const runs: ClientRun[] = [];
    // Alternating, so a busy spell on the shared machine does not fall on one client only.
    const only = process.env.BENCH_CLIENTS?.split(',');
    const guarantee = process.env.BENCH_GUARANTEE === 'at_least_once' ? 'at_least_once' : 'exactly_once';
    const peers: number[] = [];
    for (let i = 0; i < Number(process.env.BENCH_REPEAT ?? 1); i++) {
      for (const client of CLIENTS)
        if (!only || only.includes(client)) runs.push(await clientExpansion(client, guarantee));
      if (process.env.BENCH_PEER === '1') {
        log(`(9) the plain-JVM peer on the ${TARGET.toLocaleString()}-user batch`);
        peers.push((await peerExpansion(BIG_BATCH)).events_per_s);
      }
    }
    for (const rate of peers) console.log(`peer\t${rate} events/s`);
    recordClientRuns(runs);
    for (const r of runs) console.log(`${r.client}\t${r.rate} events/s\t${r.cpuSPerMillion} CPU-s per 1M events`);
    for (const client of CLIENTS) {
      if (figures[`expand_big_${client}_events_per_s`] === undefined) continue;
      console.log(
        `median ${client}: ${figures[`expand_big_${client}_events_per_s`]} events/s, ` +
          `${figures[`cpu_s_per_million_events_${client}`]} CPU-s per 1M events`,
      );
    }
    return;
  }
  const kafka = new Kafka({ brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ceilingTopic = `bench-ceiling-${randomUUID().slice(0, 8)}`;
  await ensureTopics(admin, [{ topic: ceilingTopic, numPartitions: 4, replicationFactor: 1 }]);
  try {
    const eventBytes = Buffer.byteLength(sampleEventJson(123456));
    figures.event_bytes = eventBytes;
    // Enough records that the JVM has warmed up: fewer understate the ceiling (32k/s at 100,000).
    const n = 500_000;
    log(`(1a) ProducerPerformance, ${n.toLocaleString()} records of ${eventBytes} B`);
    figures.producer_perf_records_per_s = producerPerformance(ceilingTopic, n, eventBytes);
    log(`(1b) bare kafkajs, ${n.toLocaleString()} events`);
    figures.kafkajs_events_per_s = await bareKafkajs(kafka, ceilingTopic, n);
  } finally {
    await admin.deleteTopics({ topics: [ceilingTopic] }).catch(() => undefined);
    await admin.disconnect();
  }
  log('(2) raw Cassandra read of the big and the small batch');
  const big = await rawRead(BIG_BATCH);
  figures.raw_read_big_rows_per_s = big.rate;
  figures.raw_read_big_ms = big.ms;
  // Unit cost for docs/scaling.md: Cassandra CPU per table row a token-range scan passes over.
  const cassandraBefore = serverCpuMs('cassandra');
  const scan = await rawRead(BIG_BATCH, { SYNC_READ_PLAN: 'scan' });
  figures.cassandra_cpu_s_per_million_scanned_rows = Number(
    (((serverCpuMs('cassandra') - cassandraBefore) / 1000) * (1_000_000 / ROWS)).toFixed(1),
  );
  figures.raw_scan_big_ms = scan.ms;
  log(
    `  scan of the whole table: ${scan.ms} ms, Cassandra ${figures.cassandra_cpu_s_per_million_scanned_rows} CPU-s per 1M rows`,
  );
  notes.push(big.plan);
  const small = await rawRead(SMALL_BATCH);
  figures.raw_read_small_ms = small.ms;
  notes.push(small.plan);
  log(
    `  big: ${big.rows} rows in ${big.ms} ms (${big.plan}); small: ${small.rows} rows in ${small.ms} ms (${small.plan})`,
  );

  log('(3) expansion of the 1,000-user batch');
  const s = await expansion(SMALL_BATCH, SMALL, 'exactly_once', {}, 'capture');
  figures.expand_small_ms = s.ms;
  log('(9) the plain-JVM peer on the 1,000-user batch, for the same trigger: its events must be ours');
  figures.peer_identical_events_small = await peerCheck(SMALL_BATCH, s);
  log('(3) expansion of the 10,000-user batch');
  const m = await expansion(MID_BATCH, MID);
  figures.expand_mid_ms = m.ms;
  figures.expand_mid_events_per_s = m.rate;
  figures.rss_mid_mb = m.stats.peakRssMb;
  log(`(3) expansion of the ${TARGET.toLocaleString()}-user batch`);
  const kafkaBefore = serverCpuMs('kafka');
  const b = await expansion(BIG_BATCH, TARGET, 'exactly_once', {}, 'count');
  // Unit cost for docs/scaling.md: broker CPU per event (the verifying read included: an upper bound).
  figures.kafka_cpu_s_per_million_events = Number(
    (((serverCpuMs('kafka') - kafkaBefore) / 1000) * (1_000_000 / b.events)).toFixed(1),
  );
  figures.expand_big_ms = b.ms;
  figures.expand_big_events_per_s = b.rate;
  figures.expand_big_events = b.events;
  figures.rss_big_mb = b.stats.peakRssMb;
  figures.rebalances_during_expand = b.rebalances;
  figures.cpu_s_per_million_events = Number(((b.stats.cpuMs / 1000) * (1_000_000 / Math.max(1, b.events))).toFixed(1));
  figures.eos_transactions = b.transactions;
  figures.eos_transactions_per_s = Number((b.transactions / (b.ms / 1000)).toFixed(1));
  figures.txn_max_records = benchSettings().processor.txnMaxRecords;
  figures.expand_big_distinct_users = b.check?.distinctUsers ?? NaN;
  log(
    `  ${b.events} events in ${b.ms} ms: ${b.rate} events/s, ${b.transactions} transactions, peak RSS ${b.stats.peakRssMb} MB`,
  );
  log(`(9) the plain-JVM peer on the ${TARGET.toLocaleString()}-user batch`);
  const peer = await peerExpansion(BIG_BATCH);
  figures.peer_events_per_s = peer.events_per_s;
  figures.peer_ms = peer.ms;
  figures.peer_events = peer.events;
  figures.peer_distinct_users = peer.distinctUsers;
  figures.peer_cpu_s_per_million_events = Number(((peer.cpu_s * 1_000_000) / Math.max(1, peer.events)).toFixed(1));
  figures.peer_process_cpu_s_per_million_events = Number(
    ((peer.cpu_s_process * 1_000_000) / Math.max(1, peer.events)).toFixed(1),
  );
  figures.ratio_events_per_s_ours_vs_peer = Number((b.rate / peer.events_per_s).toFixed(2));
  figures.ratio_cpu_per_million_ours_vs_peer = Number(
    (figures.cpu_s_per_million_events / figures.peer_cpu_s_per_million_events).toFixed(2),
  );
  peerJava = peer.java;
  recordClientRuns([await clientExpansion('kafkajs'), await clientExpansion('confluent')]);
  log(`(3) expansion of the ${TARGET.toLocaleString()}-user batch, at least once`);
  const alo = await expansion(BIG_BATCH, TARGET, 'at_least_once', {}, 'count');
  figures.expand_big_alo_distinct_users = alo.check?.distinctUsers ?? NaN;
  figures.expand_big_alo_ms = alo.ms;
  figures.expand_big_alo_events_per_s = alo.rate;
  figures.cpu_s_per_million_events_alo = Number(
    ((alo.stats.cpuMs / 1000) * (1_000_000 / Math.max(1, alo.events))).toFixed(1),
  );
  figures.ratio_eos_vs_alo = Number((b.rate / alo.rate).toFixed(3));
  // How big a transaction should be: the default against much smaller and larger ones.
  for (const records of [2000, 10000]) {
    log(`(3) expansion of the ${TARGET.toLocaleString()}-user batch, exactly once, ${records} events per transaction`);
    const r = await expansion(BIG_BATCH, TARGET, 'exactly_once', {
      SYNC_TXN_MAX_RECORDS: String(records),
    });
    figures[`expand_big_eos_txn_${records}_events_per_s`] = r.rate;
    log(`  ${r.rate} events/s, ${r.transactions} transactions`);
  }
  // The group: the same batch expanded by 1, 2 and 3 processor processes (fan-out over tasks).
  for (const n of [1, 2, 3]) {
    const r = n === 1 ? b : await expansion(BIG_BATCH, TARGET, 'exactly_once', {}, 'none', n);
    figures[`group_${n}_events_per_s`] = r.rate;
    figures[`group_${n}_cpu_s_per_million`] = Number(((r.stats.cpuMs / 1000) * (1_000_000 / r.events)).toFixed(1));
    figures[`group_${n}_min_share`] = Number((Math.min(...r.shares) / r.events).toFixed(3));
    log(`  ${n} processor(s): ${r.rate} events/s, shares ${r.shares.join(' / ')}`);
  }
  log(
    `  ${alo.events} events in ${alo.ms} ms: ${alo.rate} events/s; exactly once ÷ at least once ${figures.ratio_eos_vs_alo}`,
  );

  log('(5) API latency and throughput');
  await apiLatencyAndThroughput();
  report();
}

/** The figures the memory and CPU work is judged by, for one build, without the rest of the bench. */
async function expansionsOnly(): Promise<void> {
  const result: Record<string, number> = {};
  for (const [batchId, users, name] of [
    [MID_BATCH, MID, 'mid'],
    [BIG_BATCH, TARGET, 'big'],
  ] as const) {
    log(`(3) expansion of ${users.toLocaleString()} users, exactly once`);
    const splitFile = path.join(os.tmpdir(), `bench-memory-${randomUUID()}.json`);
    const split = process.env.BENCH_MEMORY_SPLIT === '1';
    const r = await expansion(
      batchId,
      users,
      'exactly_once',
      split ? { BENCH_MEMORY_SPLIT_FILE: splitFile } : {},
      name === 'big' ? 'count' : 'none',
    );
    if (split && existsSync(splitFile)) {
      const at = JSON.parse(readFileSync(splitFile, 'utf8')) as MemorySplit;
      rmSync(splitFile, { force: true });
      result[`${name}_peak_heap_mb`] = at.heapMb;
      result[`${name}_peak_external_mb`] = at.externalMb;
      result[`${name}_peak_other_mb`] = at.otherMb;
    }
    result[`${name}_events_per_s`] = r.rate;
    result[`${name}_cpu_s_per_million`] = Number(((r.stats.cpuMs / 1000) * (1_000_000 / r.events)).toFixed(1));
    result[`${name}_peak_rss_mb`] = r.stats.peakRssMb;
    result[`${name}_ms`] = r.ms;
    log(`  ${JSON.stringify(result)}`);
  }
  process.stdout.write(`${JSON.stringify({ size, node: process.version, ...result })}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
