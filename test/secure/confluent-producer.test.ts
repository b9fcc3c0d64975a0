import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig, type Settings } from '../../src/config';
import { kafkaSecurity } from '../../src/kafka/client';
import { confluentProducerClient } from '../../src/kafka/confluent-producer';
import { createLogger } from '../../src/observability/logger';
import { readTopic } from '../helpers/context';
import { secureServers } from '../helpers/secure';
import { ensureTopics } from '../../src/kafka/topics';

/**
 * The librdkafka adapter (KAFKA_CLIENT=confluent) on the secured broker, whatever KAFKA_CLIENT
 * this run has: our TLS and SASL settings mapped to librdkafka's properties, through the same
 * ports the runtime uses (a transactional producer with a transactional offset commit, and the
 * idempotent one), read back read_committed by kafkajs over the same security.
 */
const servers = secureServers();
const log = createLogger('silent');

function kafkaSettings(env: Record<string, string>): Settings['kafka'] {
  return loadConfig({ LOG_LEVEL: 'silent', KAFKA_CONNECTION_TIMEOUT_MS: '5000', ...env }).kafka;
}

const mutualTls = () => ({
  KAFKA_BROKERS: servers.kafkaMutualTls,
  KAFKA_TLS_CA_FILE: servers.file('ca.pem'),
  KAFKA_TLS_CERT_FILE: servers.file('client.pem'),
  KAFKA_TLS_KEY_FILE: servers.file('client.key'),
});

/** One committed transaction (a record and an input offset) and one idempotent send; what a reader sees. */
async function roundTrip(settings: Settings['kafka']): Promise<{ values: string[]; offset: string | undefined }> {
  const kafka = new Kafka({
    clientId: 'secure-confluent',
    brokers: settings.brokers,
    logLevel: logLevel.NOTHING,
    ...kafkaSecurity(settings),
  });
  const id = randomBytes(4).toString('hex');
  const topic = `secure-confluent-${id}`;
  const groupId = `secure-confluent-group-${id}`;
  const admin = kafka.admin();
  await admin.connect();
  const client = confluentProducerClient(settings, log);
  try {
    await ensureTopics(admin, [{ topic, numPartitions: 1 }]);
    const txn = client.transactionalProducer({ transactionalId: `secure-${id}`, transactionTimeoutMs: 30000 });
    try {
      await txn.open();
      await txn.begin();
      await txn.send([{ topic, messages: [{ key: 'k', value: 'in a transaction' }] }]);
      await txn.sendOffsets(groupId, topic, 0, '7');
      await txn.commit();
    } finally {
      await txn.close();
    }
    const idempotent = client.idempotentProducer();
    try {
      await idempotent.open();
      await idempotent.send([{ topic, messages: [{ key: 'k', value: 'idempotent' }] }]);
    } finally {
      await idempotent.close();
    }
    const records = await readTopic(kafka, topic, { until: (r) => r.length >= 2, timeoutMs: 20000, settleMs: 0 });
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    return { values: records.map((r) => r.value.toString()), offset: offsets[0]?.partitions[0]?.offset };
  } finally {
    await client.close();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

describe('the confluent producer adapter over TLS with SASL, and mutual TLS (real broker)', () => {
  test.each(['scram-sha-256', 'scram-sha-512', 'plain'])(
    'SASL_SSL with %s: a transaction with its offset commits, an idempotent send is acknowledged',
    async (mechanism) => {
      const result = await roundTrip(kafkaSettings(servers.env({ KAFKA_SASL_MECHANISM: mechanism })));
      expect(result.values).toEqual(['in a transaction', 'idempotent']);
      expect(result.offset).toBe('7');
    },
  );

  test('mutual TLS: a client certificate signed by the CA, no SASL', async () => {
    const result = await roundTrip(kafkaSettings(mutualTls()));
    expect(result.values).toEqual(['in a transaction', 'idempotent']);
    expect(result.offset).toBe('7');
  });
});

describe('the confluent producer adapter: a wrong password or an untrusted certificate is named', () => {
  const open = async (env: Record<string, string>) => {
    // A refused open() waits for librdkafka's connect attempt under way, which this bounds (+ 1 s).
    const client = confluentProducerClient(kafkaSettings({ KAFKA_CONNECTION_TIMEOUT_MS: '2000', ...env }), log);
    const producer = client.transactionalProducer({
      transactionalId: `secure-refused-${randomBytes(4).toString('hex')}`,
      transactionTimeoutMs: 30000,
    });
    const started = Date.now();
    try {
      await producer.open();
      return undefined;
    } catch (err) {
      // Refused at once, not retried until the connect gives up (30 s) with "transport failure".
      expect(Date.now() - started).toBeLessThan(15000);
      return err as { code: string; message: string; retriable: boolean };
    } finally {
      await producer.close();
      await client.close();
    }
  };

  test('wrong SCRAM password → SYNC_UNAUTHORIZED naming the SASL variables', async () => {
    const err = await open(servers.env({ KAFKA_SASL_PASSWORD: 'not-the-password' }));
    expect(err).toMatchObject({ code: 'SYNC_UNAUTHORIZED', retriable: false });
    expect(err!.message).toMatch(/Kafka rejected the credentials/);
    expect(err!.message).toMatch(/KAFKA_SASL_PASSWORD/);
  });

  test('a server certificate from a CA we do not trust → SYNC_TLS naming KAFKA_TLS_CA_FILE', async () => {
    const err = await open(servers.env({ KAFKA_TLS_CA_FILE: servers.file('rogue-ca.pem') }));
    expect(err).toMatchObject({ code: 'SYNC_TLS', retriable: false });
    expect(err!.message).toMatch(/the server's certificate is not trusted \(.*certificate verify failed/);
    expect(err!.message).toMatch(/KAFKA_TLS_CA_FILE/);
  });

  test('mutual TLS without a client certificate → SYNC_TLS naming KAFKA_TLS_CERT_FILE', async () => {
    const { KAFKA_TLS_CERT_FILE: _cert, KAFKA_TLS_KEY_FILE: _key, ...noCertificate } = mutualTls();
    const err = await open(noCertificate);
    expect(err).toMatchObject({ code: 'SYNC_TLS', retriable: false });
    expect(err!.message).toMatch(/refused our client certificate.*KAFKA_TLS_CERT_FILE/);
  });
});

/**
 * A child process (the source compiled on the fly by typescript, as ts-jest would) whose producer's
 * login is refused: it reports when close() resolved, and the parent sees when the process ended.
 */
const REFUSED_CHILD = `
const fs = require('node:fs');
const ts = require('typescript');
require.extensions['.ts'] = (module, file) => module._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), {
  compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
}).outputText, file);
const root = process.env.REFUSED_ROOT;
const { loadConfig } = require(root + '/src/config');
const { confluentProducerClient } = require(root + '/src/kafka/confluent-producer');
const { createLogger } = require(root + '/src/observability/logger');
(async () => {
  const client = confluentProducerClient(loadConfig(process.env).kafka, createLogger('silent'));
  const producer = client.transactionalProducer({ transactionalId: 'secure-refused-child', transactionTimeoutMs: 30000 });
  let code = 'opened';
  const startedAt = Date.now();
  try { await producer.open(); } catch (err) { code = err.code; }
  const refusedAt = Date.now();
  await producer.close();
  await client.close();
  console.log(JSON.stringify({ code, startedAt, refusedAt, closedAt: Date.now() }));
})();
`;

describe('the confluent producer adapter: a refused login leaves nothing running once closed', () => {
  test('the process exits as soon as the producer is closed, not when librdkafka gives up its connect (30 s)', async () => {
    const env = {
      ...process.env,
      ...servers.env({ KAFKA_SASL_PASSWORD: 'not-the-password' }),
      LOG_LEVEL: 'silent',
      KAFKA_CONNECTION_TIMEOUT_MS: '2000',
      REFUSED_ROOT: path.resolve(__dirname, '../..'),
    };
    const child = spawn(process.execPath, ['-e', REFUSED_CHILD], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exitedAt = await new Promise<number>((resolve) => child.once('exit', () => resolve(Date.now())));
    const report = JSON.parse(out) as { code: string; startedAt: number; refusedAt: number; closedAt: number };
    expect(report.code).toBe('SYNC_UNAUTHORIZED');
    // open() rejects once librdkafka's attempt under way has ended: the connection timeout + 1 s ...
    expect(report.refusedAt - report.startedAt).toBeLessThan(2000 + 1000 + 2000);
    // ... and then nothing keeps the process alive: it used to run on for the rest of 30 s.
    expect(exitedAt - report.closedAt).toBeLessThan(3000);
  }, 60000);
});
