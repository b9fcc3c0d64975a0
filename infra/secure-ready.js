#!/usr/bin/env node
// Readiness probe for the secured servers of infra/secure.sh.
//
//   node infra/secure-ready.js <kafka|cassandra> <secrets.env> <timeoutSeconds> [pid]
//
//   kafka      SASL_SSL (SCRAM-SHA-256, trusting the test CA): metadata, a group
//              coordinator lookup and a transactional producer init (so the
//              internal topics exist before tests run)
//   cassandra  TLS (trusting the test CA) + PasswordAuthenticator: on first
//              start, logs in as the default superuser, creates the test role
//              with its generated password; ready when that role can log in
// Exit codes: 0 ready (one line of detail on stdout), 1 timed out,
//             2 the watched pid exited, 3 usage / missing node module.
'use strict';

const fs = require('fs');
const path = require('path');

const [kind, secretsFile, timeoutArg, pidArg] = process.argv.slice(2);
const timeoutMs = Number(timeoutArg || 60) * 1000;
const pid = pidArg ? Number(pidArg) : 0;
if (!['kafka', 'cassandra'].includes(kind) || !secretsFile) {
  process.stderr.write('usage: secure-ready.js <kafka|cassandra> <secrets.env> <timeoutSeconds> [pid]\n');
  process.exit(3);
}

const secrets = Object.fromEntries(
  fs
    .readFileSync(secretsFile, 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const ca = fs.readFileSync(path.join(secrets.SECURE_TLS_DIR, 'ca.pem'));

function load(name) {
  try {
    return require(name);
  } catch (err) {
    process.stderr.write(
      `secure-ready: cannot load node module '${name}' (${err.code || err.message}); run 'npm ci'\n`,
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
  const config = {
    clientId: 'secure-wait-ready',
    brokers: [secrets.SECURE_KAFKA_SASL_SSL],
    ssl: { ca: [ca] },
    sasl: { mechanism: 'scram-sha-256', username: secrets.SECURE_KAFKA_USER, password: secrets.SECURE_KAFKA_PASSWORD },
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    requestTimeout: 5000,
  };
  const admin = new Kafka({ ...config, retry: { retries: 0 } }).admin();
  try {
    await withTimeout(admin.connect(), 8000, 'kafka connect');
    const cluster = await withTimeout(admin.describeCluster(), 5000, 'kafka metadata');
    await withTimeout(admin.describeGroups(['secure-wait-ready']), 10000, 'group coordinator lookup');
    const producer = new Kafka({ ...config, retry: { retries: 5, initialRetryTime: 200 } }).producer({
      transactionalId: 'secure-wait-ready',
      maxInFlightRequests: 1,
      idempotent: true,
    });
    try {
      await withTimeout(producer.connect(), 15000, 'transactional producer init');
    } finally {
      await producer.disconnect().catch(() => {});
    }
    return `SASL_SSL ${config.brokers[0]}, cluster ${cluster.clusterId}; coordinators ready`;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

async function cassandraLogin(cassandra, user, password) {
  const client = new cassandra.Client({
    contactPoints: [secrets.SECURE_CASSANDRA],
    localDataCenter: 'datacenter1',
    sslOptions: { ca: [ca] },
    authProvider: new cassandra.auth.PlainTextAuthProvider(user, password),
    socketOptions: { connectTimeout: 3000, readTimeout: 10000 },
    pooling: { warmup: false },
    policies: { reconnection: new cassandra.policies.reconnection.ConstantReconnectionPolicy(60000) },
  });
  try {
    await withTimeout(client.connect(), 10000, 'cassandra connect');
    return client;
  } catch (err) {
    await client.shutdown().catch(() => {});
    throw err;
  }
}

async function probeCassandra() {
  const cassandra = load('cassandra-driver');
  const user = secrets.SECURE_CASSANDRA_USER;
  const password = secrets.SECURE_CASSANDRA_PASSWORD;
  let client;
  try {
    client = await cassandraLogin(cassandra, user, password);
  } catch {
    // First start: the test role does not exist yet. The default superuser creates it.
    const admin = await cassandraLogin(cassandra, 'cassandra', 'cassandra');
    try {
      await admin.execute(
        `CREATE ROLE IF NOT EXISTS ${user} WITH PASSWORD = '${password}' AND LOGIN = true AND SUPERUSER = true`,
      );
    } finally {
      await admin.shutdown().catch(() => {});
    }
    client = await cassandraLogin(cassandra, user, password);
  }
  try {
    const rs = await withTimeout(client.execute('SELECT release_version FROM system.local'), 8000, 'cassandra query');
    return `TLS + password ${secrets.SECURE_CASSANDRA}, release ${rs.first().release_version}`;
  } finally {
    await client.shutdown().catch(() => {});
  }
}

async function main() {
  const probeFn = kind === 'kafka' ? probeKafka : probeCassandra;
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no attempt made';
  for (;;) {
    if (pid && !alive(pid)) {
      process.stderr.write(`${kind}: process ${pid} exited before it was ready (last probe error: ${lastError})\n`);
      process.exit(2);
    }
    try {
      process.stdout.write(`${await probeFn()}\n`);
      process.exit(0);
    } catch (err) {
      lastError = err && err.message ? err.message : String(err);
    }
    if (Date.now() >= deadline) break;
    await sleep(1000);
  }
  process.stderr.write(`${kind}: not ready after ${timeoutMs / 1000} s (last probe error: ${lastError})\n`);
  process.exit(1);
}

main();
