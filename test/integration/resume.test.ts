import { EnrolmentReader, type ReadPosition } from '../../src/cassandra/enrolments';
import { tokenOf } from '../../src/cassandra/token-ranges';
import { loadConfig } from '../../src/config';
import { createTestContext, type TestContext } from '../helpers/context';
import { enrolment, seed } from '../helpers/service';

const COURSE = 'do_course_r';
const BATCH = 'batch_r';
const USERS = 2400;

/**
 * Resume must be exact: reading a batch up to any page, then starting a new read from the
 * position that page reported, gives every row of the batch exactly once, whatever the plan and
 * wherever the cut falls (mid-probe, right after the plan was chosen, deep into parallel ranges).
 */
describe('whole-batch reads resume exactly from a reported position', () => {
  let ctx: TestContext;
  const ids = Array.from({ length: USERS }, (_, i) => `u-${i}-${'x'.repeat(i % 7)}`);

  beforeAll(async () => {
    ctx = await createTestContext();
    await seed(ctx, [
      ...ids.map((id) => enrolment(id, COURSE, BATCH, { active: true })),
      // Same users in other batches, and other users: a scan must step over them.
      ...ids.slice(0, 800).map((id) => enrolment(id, COURSE, 'other_batch')),
      ...Array.from({ length: 1500 }, (_, i) => enrolment(`noise-${i}`, 'other_course', BATCH)),
    ]);
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  test('our client-side token is the token Cassandra computes, for ids of every shape', async () => {
    const odd = ['ünïcödé-用户-🎓', `o'brien "q"`, 'back\\slash', ' ', 'a'.repeat(1000)];
    await seed(
      ctx,
      odd.map((id) => enrolment(id, 'odd_course', 'odd_batch')),
    );
    const rows = await ctx.cassandra.execute(
      `SELECT userid, token(userid) AS t FROM ${ctx.settings.cassandra.keyspace}.user_enrolments`,
      [],
      { fetchSize: 10000 },
    );
    expect(rows.rowLength).toBeGreaterThan(USERS);
    for (const id of odd) expect(rows.rows.some((r) => r.userid === id)).toBe(true);
    for (const row of rows.rows)
      expect([row.userid, tokenOf(String(row.userid))]).toEqual([row.userid, BigInt(String(row.t))]);
  });

  test.each([
    ['scan', { SYNC_READ_PLAN: 'scan', SYNC_SCAN_RANGES: '8', SYNC_PAGE_SIZE: '150' }],
    ['index', { SYNC_READ_PLAN: 'index', SYNC_SCAN_RANGES: '5', SYNC_PAGE_SIZE: '150' }],
    // auto: the probe stops after 400 rows and hands over; cuts fall inside and after the probe.
    [
      'auto, probe then scan',
      { SYNC_INDEX_PROBE_ROWS: '400', SYNC_PAGE_SIZE: '100', SYNC_INDEX_COST_FACTOR: '1000000' },
    ],
    ['auto, probe then index', { SYNC_INDEX_PROBE_ROWS: '400', SYNC_PAGE_SIZE: '100', SYNC_INDEX_COST_FACTOR: '1' }],
  ])('%s', async (_name, env) => {
    const settings = loadConfig({ CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace, ...env });
    const reader = new EnrolmentReader(ctx.cassandra, settings.cassandra.keyspace, settings.processor);
    const signal = new AbortController().signal;

    const positions: Array<{ seen: string[]; position: ReadPosition }> = [];
    const seen: string[] = [];
    for await (const page of reader.readBatch(COURSE, BATCH, signal)) {
      seen.push(...page.rows.map((r) => r.userId));
      positions.push({ seen: [...seen], position: JSON.parse(JSON.stringify(page.position)) as ReadPosition });
    }
    expect(seen.sort()).toEqual([...ids].sort());
    expect(positions.length).toBeGreaterThan(8);
    expect(positions[positions.length - 1]?.position.ranges).toEqual([]);

    // Cut at the first pages (inside the probe), in the middle, and near the end.
    const cuts = [0, 1, 3, 4, Math.floor(positions.length / 2), positions.length - 2];
    for (const cut of cuts) {
      const before = positions[cut];
      if (!before) continue;
      const after: string[] = [];
      for await (const page of reader.readBatch(COURSE, BATCH, signal, { resumeFrom: before.position })) {
        after.push(...page.rows.map((r) => r.userId));
      }
      const all = [...before.seen, ...after];
      expect({ cut, total: all.length, distinct: new Set(all).size }).toEqual({
        cut,
        total: USERS,
        distinct: USERS,
      });
    }
  });

  test('reads running side by side share one read-ahead, and give it all back however they end', async () => {
    const settings = loadConfig({
      CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace,
      SYNC_READ_PLAN: 'scan',
      SYNC_SCAN_RANGES: '16',
      SYNC_SCAN_CONCURRENCY: '4',
      SYNC_PAGE_SIZE: '50',
    });
    const reader = new EnrolmentReader(ctx.cassandra, settings.cassandra.keyspace, settings.processor);
    const limit = 2 * 4 * 50;
    let most = 0;
    // Three slow consumers: each alone could hold the whole limit; together they may not exceed it.
    const readAll = async (): Promise<number> => {
      let rows = 0;
      for await (const page of reader.readBatch(COURSE, BATCH, new AbortController().signal)) {
        rows += page.rows.length;
        most = Math.max(most, reader.rowsReadAhead);
        await new Promise((r) => setTimeout(r, 2));
      }
      return rows;
    };
    expect(await Promise.all([readAll(), readAll(), readAll()])).toEqual([USERS, USERS, USERS]);
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(limit);
    expect(reader.rowsReadAhead).toBe(0);

    // A consumer that stops early, and a read that is aborted, leave nothing held.
    for await (const page of reader.readBatch(COURSE, BATCH, new AbortController().signal)) {
      if (page.rows.length > 0) break;
    }
    const stop = new AbortController();
    await expect(
      (async () => {
        for await (const page of reader.readBatch(COURSE, BATCH, stop.signal)) if (page.rows.length > 0) stop.abort();
      })(),
    ).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
    await new Promise((r) => setTimeout(r, 200));
    expect(reader.rowsReadAhead).toBe(0);
    expect(await readAll()).toBe(USERS);
  });

  test('a page’s rows are emptied when the next page is asked for, after its consumer had them all', async () => {
    const settings = loadConfig({
      CASSANDRA_KEYSPACE: ctx.settings.cassandra.keyspace,
      SYNC_READ_PLAN: 'scan',
      SYNC_SCAN_RANGES: '8',
      SYNC_PAGE_SIZE: '150',
    });
    const reader = new EnrolmentReader(ctx.cassandra, settings.cassandra.keyspace, settings.processor);
    const pages: Array<{ rows: unknown[] }> = [];
    const seen: string[] = [];
    for await (const page of reader.readBatch(COURSE, BATCH, new AbortController().signal)) {
      // Every earlier page is empty by now; this one is whole while its consumer holds it.
      expect(pages.every((p) => p.rows.length === 0)).toBe(true);
      seen.push(...page.rows.map((r) => r.userId));
      pages.push(page);
    }
    expect(pages.length).toBeGreaterThan(8);
    expect(seen.sort()).toEqual([...ids].sort());
  });
});
