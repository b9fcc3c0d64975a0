#!/usr/bin/env node
// Readiness probe for the local servers started by infra/services.sh.
//
//   node infra/wait-ready.js [--warm] <kafka|cassandra|registry> <host> <port> <timeoutSeconds> [pid]
//
// Polls until the server answers a real protocol request:
//   kafka      a metadata request (kafkajs admin describeCluster)
//   cassandra  SELECT release_version FROM system.local (cassandra-driver)
//   registry   GET /apis/ccompat/v7/subjects answering 200 with a JSON array
// --warm (kafka only): also make the broker create its internal topics
//   (__consumer_offsets, __transaction_state) by looking up a group
//   coordinator and initialising a transactional producer, so the first
//   consumer group / transaction of a test run does not wait for them.
// Exit codes: 0 ready (one line of detail on stdout), 1 timed out,
//             2 the watched pid exited, 3 usage / missing node module.
// Plain CommonJS on purpose: runs with `node`, no TypeScript build needed.
'use strict';

const http = require('http');

const argv = process.argv.slice(2);
const warm = argv.includes('--warm');
const [kind, host, portArg, timeoutArg, pidArg] = argv.filter((a) => a !== '--warm');
const port = Number(portArg);
const timeoutMs = Number(timeoutArg || 60) * 1000;
const pid = pidArg ? Number(pidArg) : 0;

if (!['kafka', 'cassandra', 'registry'].includes(kind) || !host || !port) {
  process.stderr.write('usage: wait-ready.js <kafka|cassandra|registry> <host> <port> <timeoutSeconds> [pid]\n');
  process.exit(3);
}

function load(name) {
  try {
    return require(name);
  } catch (err) {
    process.stderr.write(
      `wait-ready: cannot load node module '${name}' (${err.code || err.message}); run 'npm ci' first\n`,
    );
    process.exit(3);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function alive(p) {
  try {
    process.kill(p, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

async function probeKafka() {
  const { Kafka, logLevel } = load('kafkajs');
  const kafka = new Kafka({
    clientId: 'services-wait-ready',
    brokers: [`${host}:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await withTimeout(admin.connect(), 5000, 'kafka connect');
    const cluster = await withTimeout(admin.describeCluster(), 5000, 'kafka metadata');
    if (!cluster.brokers || cluster.brokers.length === 0) throw new Error('metadata lists no broker');
    const detail = `cluster ${cluster.clusterId}, ${cluster.brokers.length} broker(s), controller ${cluster.controller}`;
    if (!warm) return detail;
    await withTimeout(admin.describeGroups(['services-wait-ready']), 10000, 'group coordinator lookup');
    // transactional producers need retries enabled, unlike the bare probe above
    const producer = new Kafka({
      clientId: 'services-wait-ready',
      brokers: [`${host}:${port}`],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2000,
      requestTimeout: 5000,
      retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
    }).producer({ transactionalId: 'services-wait-ready', maxInFlightRequests: 1, idempotent: true });
    try {
      await withTimeout(producer.connect(), 10000, 'transactional producer init');
    } finally {
      await producer.disconnect().catch(() => {});
    }
    return `${detail}; group and transaction coordinators ready`;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

async function probeCassandra() {
  const cassandra = load('cassandra-driver');
  const client = new cassandra.Client({
    contactPoints: [`${host}:${port}`],
    localDataCenter: 'datacenter1',
    socketOptions: { connectTimeout: 2000, readTimeout: 5000 },
    pooling: { warmup: false },
    policies: { reconnection: new cassandra.policies.reconnection.ConstantReconnectionPolicy(60000) },
  });
  try {
    await withTimeout(client.connect(), 8000, 'cassandra connect');
    const rs = await withTimeout(
      client.execute('SELECT release_version, data_center FROM system.local'),
      8000,
      'cassandra query',
    );
    const row = rs.first();
    if (!row || !row.release_version) throw new Error('system.local returned no release_version');
    return `release ${row.release_version}, data center ${row.data_center}`;
  } finally {
    await client.shutdown().catch(() => {});
  }
}

function probeRegistry() {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host, port, path: '/apis/ccompat/v7/subjects', timeout: 3000, headers: { Accept: 'application/json' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(new Error(`GET /apis/ccompat/v7/subjects answered ${res.statusCode}`));
            return;
          }
          let subjects;
          try {
            subjects = JSON.parse(body);
          } catch {
            reject(new Error('GET /apis/ccompat/v7/subjects did not answer JSON'));
            return;
          }
          if (!Array.isArray(subjects)) {
            reject(new Error('GET /apis/ccompat/v7/subjects did not answer a JSON array'));
            return;
          }
          resolve(`${subjects.length} subject(s)`);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('HTTP request timed out')));
    req.on('error', reject);
  });
}

const probes = { kafka: probeKafka, cassandra: probeCassandra, registry: probeRegistry };

async function main() {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no attempt made';
  for (;;) {
    if (pid && !alive(pid)) {
      process.stderr.write(`${kind}: process ${pid} exited before it was ready (last probe error: ${lastError})\n`);
      process.exit(2);
    }
    try {
      const detail = await probes[kind]();
      process.stdout.write(`${detail}\n`);
      process.exit(0);
    } catch (err) {
      lastError = err && err.message ? err.message : String(err);
    }
    if (Date.now() >= deadline) break;
    await sleep(500);
  }
  process.stderr.write(
    `${kind}: not ready on ${host}:${port} after ${timeoutMs / 1000} s (last probe error: ${lastError})\n`,
  );
  process.exit(1);
}

main();
