import { execFile } from 'node:child_process';
import path from 'node:path';
import { registerSchemas } from '../../src/kafka/registry';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * `watch` prints each event of the output topic keyed by its user, as the README shows: JSON
 * events as they are, and Avro ones (SYNC_EVENT_FORMAT=avro) decoded through the registry into
 * the same JSON, not their bytes.
 */
const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist/src/cli.js');

const event = (userId: string) => ({
  eid: 'BE_JOB_REQUEST',
  ets: 1795647124382,
  mid: `LP.1795647124382.${userId}`,
  actor: { type: 'System', id: 'Course Batch Updater' },
  context: { pdata: { ver: '1.0', id: 'org.sunbird.platform' } },
  object: { type: 'CourseBatchEnrolment', id: `demo_batch_1_${userId}` },
  edata: {
    action: 'user-enrolment-sync',
    iteration: 1,
    batchId: 'demo_batch_1',
    userId,
    courseId: 'do_demo_course',
  },
});

describe('watch', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await createTestContext();
  });

  afterAll(() => ctx.cleanup());

  test('prints JSON events as they are and Avro events decoded, each keyed by its user', async () => {
    const { syncEventSchemaId } = await registerSchemas(ctx.registry, ctx.settings.topics);
    const producer = ctx.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: ctx.settings.topics.output,
      messages: [
        { key: 'u-json', value: JSON.stringify(event('u-json')), partition: 0 },
        { key: 'u-avro', value: await ctx.registry.encode(syncEventSchemaId, event('u-avro')), partition: 0 },
      ],
    });
    await producer.disconnect();

    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        'node',
        [cli, 'watch', '--from-beginning', '--limit', '2', '--timeout-ms', '30000'],
        { cwd: root, env: { ...process.env, SYNC_ENV: ctx.settings.env }, timeout: 60000 },
        (err, out) => (err ? reject(err) : resolve(out)),
      );
    });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    const printed = Object.fromEntries(lines.map((line) => line.split('\t')).map(([k, v]) => [k, JSON.parse(v ?? '')]));
    expect(printed).toEqual({ 'u-json': event('u-json'), 'u-avro': event('u-avro') });
  });
});
