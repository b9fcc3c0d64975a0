import { randomBytes } from 'node:crypto';
import { logLevel } from 'kafkajs';
import { createCassandra } from '../../src/cassandra/client';
import { loadConfig } from '../../src/config';
import { createKafka } from '../../src/kafka/client';
import { createLogger } from '../../src/observability/logger';
import { EnrolmentSyncService } from '../../src/service';
import { createTestContext, readTopic, type TestContext } from '../helpers/context';
import { secureServers } from '../helpers/secure';
import { enrolment, patch, seed, startService } from '../helpers/service';
import { ensureTopics } from '../../src/kafka/topics';

const servers = secureServers();
const log = createLogger('silent');

/** A message there and back through the product's own client factory, with these settings. */
async function roundTrip(env: Record<string, string>): Promise<string> {
  const settings = loadConfig({ LOG_LEVEL: 'silent', ...env });
  const kafka = createKafka(settings.kafka, log, { logLevel: logLevel.NOTHING });
  const topic = `secure-${randomBytes(4).toString('hex')}`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, [{ topic, numPartitions: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    const value = `hello over ${settings.kafka.sasl?.mechanism ?? 'mutual TLS'}`;
    await producer.send({ topic, acks: -1, messages: [{ key: 'k', value }] });
    await producer.disconnect();
    const records = await readTopic(kafka, topic, { until: (r) => r.length >= 1, timeoutMs: 20000, settleMs: 0 });
    return records[0]?.value.toString() ?? '';
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

describe('Kafka over TLS with SASL, and mutual TLS (real broker)', () => {
  test.each(['scram-sha-256', 'scram-sha-512', 'plain'])('SASL_SSL with %s: produce and consume', async (mech) => {
    const value = await roundTrip(servers.env({ KAFKA_SASL_MECHANISM: mech }));
    expect(value).toBe(`hello over ${mech}`);
  });

  test('mutual TLS: a client certificate signed by the CA, no SASL', async () => {
    const value = await roundTrip({
      KAFKA_BROKERS: servers.kafkaMutualTls,
      KAFKA_TLS_CA_FILE: servers.file('ca.pem'),
      KAFKA_TLS_CERT_FILE: servers.file('client.pem'),
      KAFKA_TLS_KEY_FILE: servers.file('client.key'),
    });
    expect(value).toBe('hello over mutual TLS');
  });
});

describe('Cassandra over TLS with a password (real server)', () => {
  test('connects and reads', async () => {
    const settings = loadConfig({ LOG_LEVEL: 'silent', ...servers.env() });
    const client = createCassandra(settings.cassandra);
    try {
      await client.connect();
      const rs = await client.execute('SELECT release_version FROM system.local');
      expect(rs.first()?.get('release_version')).toMatch(/^5\./);
      const me = await client.execute('SELECT role, can_login FROM system_auth.roles WHERE role = ?', [
        servers.cassandraUser,
      ]);
      expect(me.first()?.get('can_login')).toBe(true);
    } finally {
      await client.shutdown();
    }
  });
});

describe('the whole service on the secured servers', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;

  beforeAll(async () => {
    ctx = await createTestContext(servers.env());
    await seed(ctx, [enrolment('u1', 'do_c', 'b1'), enrolment('u2', 'do_c', 'b1')]);
    service = await startService(ctx, { api: true, processor: true });
  });
  afterAll(async () => {
    await service?.stop();
    await ctx?.cleanup();
  });

  test('an API request becomes a trigger and a sync event, every hop over TLS + authentication', async () => {
    const res = await patch(`${service.url}/v1/content/state/update`, {
      request: { userId: ['u1', 'nobody'], batchId: 'b1', courseId: 'do_c' },
    });
    expect(res.status).toBe(200);
    expect(res.body.result).toMatchObject({ users: 1, notEnrolled: ['nobody'] });
    const events = await readTopic(ctx.kafka, ctx.settings.topics.output, {
      until: (r) => r.some((x) => x.key === 'u1'),
      settleMs: 1000,
    });
    expect(events.map((e) => e.key)).toEqual(['u1']);
    expect(JSON.parse(events[0]!.value.toString()).edata).toMatchObject({ userId: 'u1', batchId: 'b1' });
  });
});

describe('a wrong password or an untrusted certificate: a clear startup error naming the cause', () => {
  const start = async (overrides: Record<string, string>) => {
    const settings = loadConfig({
      LOG_LEVEL: 'silent',
      API_PORT: '0',
      KAFKA_CONNECTION_TIMEOUT_MS: '3000',
      ...servers.env(overrides),
    });
    const service = new EnrolmentSyncService(settings, log);
    try {
      await service.start({ api: true, processor: false });
      return undefined;
    } catch (err) {
      return err as { code: string; message: string; retriable: boolean };
    } finally {
      await service.stop();
    }
  };

  test('Kafka: wrong SCRAM password → SYNC_UNAUTHORIZED naming the SASL variables', async () => {
    const err = await start({ KAFKA_SASL_PASSWORD: 'not-the-password' });
    expect(err).toMatchObject({ code: 'SYNC_UNAUTHORIZED', retriable: false });
    expect(err!.message).toMatch(/Kafka rejected the credentials/);
    expect(err!.message).toMatch(/KAFKA_SASL_PASSWORD/);
  });

  test('Kafka: a server certificate from a CA we do not trust → SYNC_TLS naming KAFKA_TLS_CA_FILE', async () => {
    const err = await start({ KAFKA_TLS_CA_FILE: servers.file('rogue-ca.pem') });
    expect(err).toMatchObject({ code: 'SYNC_TLS', retriable: false });
    expect(err!.message).toMatch(
      /TLS with Kafka failed: the server's certificate is not trusted \(SELF_SIGNED_CERT_IN_CHAIN/,
    );
    expect(err!.message).toMatch(/KAFKA_TLS_CA_FILE/);
  });

  test('Cassandra: wrong password → SYNC_UNAUTHORIZED naming CASSANDRA_PASSWORD', async () => {
    const err = await start({ CASSANDRA_PASSWORD: 'not-the-password' });
    expect(err).toMatchObject({ code: 'SYNC_UNAUTHORIZED', retriable: false });
    expect(err!.message).toMatch(/Cassandra rejected the credentials/);
    expect(err!.message).toMatch(/CASSANDRA_PASSWORD/);
  });

  test('Cassandra: a certificate from a CA we do not trust → SYNC_TLS naming CASSANDRA_TLS_CA_FILE', async () => {
    const err = await start({ CASSANDRA_TLS_CA_FILE: servers.file('rogue-ca.pem') });
    expect(err).toMatchObject({ code: 'SYNC_TLS', retriable: false });
    expect(err!.message).toMatch(
      /TLS with Cassandra failed: the server's certificate is not trusted \(SELF_SIGNED_CERT_IN_CHAIN/,
    );
    expect(err!.message).toMatch(/CASSANDRA_TLS_CA_FILE/);
  });

  test('Cassandra: no password at all against PasswordAuthenticator → SYNC_UNAUTHORIZED', async () => {
    const err = await start({ CASSANDRA_USERNAME: '', CASSANDRA_PASSWORD: '' });
    expect(err).toMatchObject({ code: 'SYNC_UNAUTHORIZED' });
  });
});
