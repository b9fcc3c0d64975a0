/**
 * What the processor's second read of an API trigger's enrolments costs, measured on the
 * processor alone: single-user triggers as the API writes them (with the rows it read, the
 * `enrolments` field), paced as API traffic arrives, expanded by `enrolment-sync processor`
 * once with SYNC_CARRIED_ENROLMENTS_MAX_AGE_MS=0 (it reads Cassandra for each, as before) and
 * once with the default (it uses the rows), alternating, CARRY_ROUNDS times. Prints CPU-ms per
 * trigger of the processor, Cassandra and the broker (each net of an idle window before), and
 * the processor's Cassandra requests per trigger (its sync_cassandra_requests_total).
 *
 *   BENCH_SIZE=small node dist/bench/bench.js --api   (seeds bench_small_200000 once), then
 *   node dist/bench/carried-reads.js                  CARRY_TRIGGERS (12000), CARRY_RATE (800/s), CARRY_ROUNDS (2),
 *                                                     CARRY_VARIANTS (read,carried), CARRY_NODE_ARGS (e.g. --cpu-prof)
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { createCassandra } from '../src/cassandra/client';
import { EnrolmentReader } from '../src/cassandra/enrolments';
import { loadConfig } from '../src/config';
import { ensureTopics, topicSpecs } from '../src/kafka/topics';
import { cpuMsOf, serverPid } from './proc';

const root = path.resolve(__dirname, '../..');
const KEYSPACE = process.env.CARRY_KEYSPACE ?? 'bench_small_200000';
const COURSE = 'do_bench_course';
const BATCH = 'bench_batch_1k';
const USERS = 1_000;
const TRIGGERS = Number(process.env.CARRY_TRIGGERS ?? 12_000);
const RATE = Number(process.env.CARRY_RATE ?? 800);
const ROUNDS = Number(process.env.CARRY_ROUNDS ?? 2);

const log = (m: string): void => console.error(`[carried ${new Date().toISOString().slice(11, 19)}] ${m}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const base = loadConfig({ CASSANDRA_KEYSPACE: KEYSPACE, LOG_LEVEL: 'silent' });
  const cassandra = createCassandra(base.cassandra);
  await cassandra.connect();
  const reader = new EnrolmentReader(cassandra, KEYSPACE, base.processor);
  const users = Array.from({ length: USERS }, (_, i) => `s${i}`);
  const rows = new Map((await reader.findByKeys(COURSE, BATCH, users)).map((r) => [r.userId, r]));
  await cassandra.shutdown();
  const enrolled = users.filter((u) => rows.get(u)?.active !== false);
  log(`${enrolled.length} active users of ${BATCH}; ${TRIGGERS} triggers at ${RATE}/s per run`);

  const kafka = new Kafka({ brokers: base.kafka.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const pids = { kafka: serverPid('kafka'), cassandra: serverPid('cassandra') };

  for (let round = 1; round <= ROUNDS; round++) {
    for (const variant of (process.env.CARRY_VARIANTS ?? 'read,carried').split(',') as Array<'read' | 'carried'>) {
      const env = `bench-carry-${randomUUID().slice(0, 8)}`;
      const settings = loadConfig({ SYNC_ENV: env, CASSANDRA_KEYSPACE: KEYSPACE, LOG_LEVEL: 'silent' });
      await ensureTopics(admin, topicSpecs(settings.topics));
      // One per run: a producer that knew an earlier run's deleted topics fails its metadata refresh.
      const producer = kafka.producer({ idempotent: true });
      await producer.connect();
      const port = String(20000 + Math.floor(Math.random() * 1000));
      let output = '';
      // CARRY_NODE_ARGS: node's arguments for the processor (--cpu-prof --cpu-prof-dir=…).
      const nodeArgs = process.env.CARRY_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
      const child = spawn('node', [...nodeArgs, path.join(root, 'dist/src/cli.js'), 'processor'], {
        cwd: root,
        env: {
          ...process.env,
          SYNC_ENV: env,
          CASSANDRA_KEYSPACE: KEYSPACE,
          PROCESSOR_PORT: port,
          LOG_LEVEL: 'info',
          SYNC_CARRIED_ENROLMENTS_MAX_AGE_MS: variant === 'read' ? '0' : '300000',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const requests = async (): Promise<number> => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return [...text.matchAll(/^sync_cassandra_requests_total\{[^}]*\} (\d+)/gm)].reduce(
          (n, m) => n + Number(m[1]),
          0,
        );
      };
      try {
        for (let i = 0; !/joined consumer group/.test(output); i++) {
          if (i > 1200) throw new Error(`processor did not join: ${output.slice(-2000)}`);
          await sleep(50);
        }
        await sleep(3000);
        const snap = () => ({
          processor: cpuMsOf(child.pid),
          kafka: cpuMsOf(pids.kafka),
          cassandra: cpuMsOf(pids.cassandra),
        });
        const idle0 = snap();
        const idleT0 = performance.now();
        await sleep(3000);
        const idle1 = snap();
        const idleMs = performance.now() - idleT0;
        const req0 = await requests();
        const before = snap();
        const t0 = performance.now();
        // Paced in 10 ms slices, as API requests arrive; each trigger as the API writes it.
        const perSlice = Math.max(1, Math.round(RATE / 100));
        for (let sent = 0; sent < TRIGGERS;) {
          const sliceStart = performance.now();
          const messages = [];
          for (let k = 0; k < perSlice && sent < TRIGGERS; k++, sent++) {
            const userId = enrolled[sent % enrolled.length] as string;
            const row = rows.get(userId);
            const triggerId = randomUUID();
            messages.push({
              key: triggerId,
              value: JSON.stringify({
                triggerId,
                courseId: COURSE,
                batchId: BATCH,
                userIds: [userId],
                requestedBy: 'api',
                requestedAt: Date.now(),
                source: 'api',
                includeInactive: false,
                includeCompleted: true,
                enrolments: {
                  readAt: Date.now(),
                  rows: [{ userId, active: row?.active ?? null, status: row?.status ?? null }],
                },
              }),
            });
          }
          await producer.send({ topic: settings.topics.trigger, acks: -1, messages });
          const left = 10 - (performance.now() - sliceStart);
          if (left > 0) await sleep(left);
        }
        // Done when the processor's committed offsets reach the end of every trigger partition.
        for (;;) {
          const ends = await admin.fetchTopicOffsets(settings.topics.trigger);
          const [committed] = await admin.fetchOffsets({
            groupId: settings.processor.groupId,
            topics: [settings.topics.trigger],
          });
          const behind = ends.reduce((n, e) => {
            const c = committed?.partitions.find((p) => p.partition === e.partition);
            return n + Number(e.offset) - Math.max(0, Number(c?.offset ?? 0));
          }, 0);
          if (behind === 0) break;
          await sleep(100);
        }
        const after = snap();
        const ms = performance.now() - t0;
        const req1 = await requests();
        const per = (name: 'processor' | 'kafka' | 'cassandra') => {
          const used = after[name] - before[name];
          const background = ((idle1[name] - idle0[name]) / idleMs) * ms;
          return { raw: used / TRIGGERS, net: Math.max(0, used - background) / TRIGGERS };
        };
        const p = per('processor');
        const c = per('cassandra');
        const k = per('kafka');
        log(
          `round ${round} ${variant}: ${Math.round(TRIGGERS / (ms / 1000))} triggers/s; CPU-ms per trigger: ` +
            `processor ${p.raw.toFixed(3)} (net ${p.net.toFixed(3)}), cassandra ${c.raw.toFixed(3)} (net ${c.net.toFixed(3)}), ` +
            `kafka ${k.raw.toFixed(3)} (net ${k.net.toFixed(3)}); processor's Cassandra requests per trigger ` +
            `${((req1 - req0) / TRIGGERS).toFixed(3)}; load ${os.loadavg()[0]?.toFixed(1)}`,
        );
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
        await producer.disconnect();
        await admin
          .deleteTopics({ topics: Object.values(settings.topics).filter((t) => typeof t === 'string') as string[] })
          .catch(() => undefined);
      }
    }
  }
  await admin.disconnect();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
