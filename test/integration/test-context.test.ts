import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { createTestContext } from '../helpers/context';

/**
 * The tests' own helper: a context whose setup fails half way is handed to no test, so nothing
 * would ever clean it up. Its Kafka admin stayed connected (jest then did not exit after the
 * last test) and its topics stayed on the shared broker.
 */
test('a test context that fails to set up closes its connections and removes its topics', async () => {
  const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
  const env = `test-ctxfail-${randomBytes(4).toString('hex')}`;
  const before = sockets();
  // Kafka connects and the topics are created; then Cassandra cannot be reached.
  await expect(createTestContext({ SYNC_ENV: env, CASSANDRA_CONTACT_POINTS: '127.0.0.1:1' })).rejects.toThrow();
  await new Promise((r) => setTimeout(r, 500)); // closed sockets are released on a later tick
  expect(sockets()).toBe(before);

  const kafka = new Kafka({
    brokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    expect((await admin.listTopics()).filter((t) => t.startsWith(`${env}.`))).toEqual([]);
  } finally {
    await admin.disconnect();
  }
});
