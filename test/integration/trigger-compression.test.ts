import { execFileSync } from 'node:child_process';
import path from 'node:path';
import * as zlib from 'node:zlib';
import { createTestContext, readTopic, type TestContext } from '../helpers/context';
import { enrolment, seed, startService } from '../helpers/service';
import type { EnrolmentSyncService } from '../../src/service';

const COURSE = 'do_course_codecs';
const BATCH = 'batch_codecs';
const root = path.resolve(__dirname, '../..');

/**
 * Upstream services write triggers with whatever compression their client is set to. kafkajs,
 * which our consumers are, decodes only gzip by itself: a snappy, lz4 or zstd batch crashed the
 * consumer on every fetch and stalled the partition for good. The triggers here come from the
 * Java client (the broker's own ConsoleProducer, from the jars the servers run on), as a Java
 * upstream service writes them. zstd is read where node:zlib has it (Node 22.15 and later; the
 * runtime's Node 24 does).
 */
const codecs = ['gzip', 'snappy', 'lz4', ...('zstdDecompress' in zlib ? ['zstd'] : [])];

function javaProduce(brokers: string[], topic: string, codec: string, lines: string[]): void {
  execFileSync(
    'java',
    [
      '-Xmx128m',
      '-cp',
      path.join(root, 'infra/target/kafka/lib/*'),
      'org.apache.kafka.tools.ConsoleProducer',
      '--bootstrap-server',
      brokers.join(','),
      '--topic',
      topic,
      '--compression-codec',
      codec,
      '--property',
      'parse.key=true',
      '--property',
      'key.separator=|',
    ],
    { input: lines.join('\n') + '\n', stdio: ['pipe', 'ignore', 'pipe'], timeout: 60_000 },
  );
}

describe('processor: triggers compressed by an upstream Java producer', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;
  beforeAll(async () => {
    ctx = await createTestContext();
    await seed(ctx, [
      ...codecs.map((c) => enrolment(`user-${c}`, COURSE, BATCH)),
      enrolment('user-after', COURSE, BATCH),
    ]);
    service = await startService(ctx, { api: false, processor: true });
  });
  afterAll(async () => {
    await service.stop();
    await ctx.cleanup();
  });

  test(`${codecs.join(', ')}: each trigger expands to its user's one event, and the partition goes on`, async () => {
    const { trigger, output } = ctx.settings.topics;
    const line = (user: string) => `${user}|${JSON.stringify({ courseId: COURSE, batchId: BATCH, userIds: [user] })}`;
    for (const codec of codecs) javaProduce(ctx.settings.kafka.brokers, trigger, codec, [line(`user-${codec}`)]);
    // And one uncompressed, after them.
    javaProduce(ctx.settings.kafka.brokers, trigger, 'none', [line('user-after')]);

    const users = [...codecs.map((c) => `user-${c}`), 'user-after'];
    const out = await readTopic(ctx.kafka, output, {
      until: (r) => users.every((u) => r.some((x) => x.key === u)),
      settleMs: 300,
    });
    expect(out.map((r) => r.key).sort()).toEqual(users.sort());
    for (const r of out) expect(JSON.parse(r.value.toString()).edata).toMatchObject({ userId: r.key, batchId: BATCH });
  });
});
