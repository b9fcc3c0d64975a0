import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { createTestContext } from '../helpers/context';
import { startService } from '../helpers/service';

/**
 * The tests' own helpers: a context or a service whose setup fails half way is handed to no
 * test, so nothing would ever clean it up. Its clients stayed connected (jest then did not exit
 * after the last test) and a context's topics stayed on the shared broker.
 */
const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
const released = () => new Promise((r) => setTimeout(r, 500)); // closed sockets go on a later tick

test('a test context that fails to set up closes its connections and removes its topics', async () => {
  const env = `test-ctxfail-${randomBytes(4).toString('hex')}`;
  const before = sockets();
  // Kafka connects and the topics are created; then Cassandra cannot be reached.
  await expect(createTestContext({ SYNC_ENV: env, CASSANDRA_CONTACT_POINTS: '127.0.0.1:1' })).rejects.toThrow();
  await released();
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

test('a service that fails to start (a topic missing) is stopped: no client of it stays connected', async () => {
  const ctx = await createTestContext();
  try {
    await ctx.admin.deleteTopics({ topics: [ctx.settings.topics.trigger] });
    const before = sockets();
    await expect(startService(ctx, { api: true, processor: false })).rejects.toMatchObject({ code: 'SYNC_CONFIG' });
    await released();
    expect(sockets()).toBe(before);
  } finally {
    await ctx.cleanup();
  }
});
