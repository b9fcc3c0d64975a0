import { types, type Client } from 'cassandra-driver';
import type { Settings } from '../config';
import { SyncError } from '../errors';
import type { Logger } from '../observability/logger';
import { mapConcurrent, mergeBounded, throwIfAborted } from '../util/async';
import { translateCassandraError } from './client';
import { MAX_TOKEN, MIN_TOKEN, ringFraction, splitRange, type TokenRange } from './token-ranges';

export interface EnrolmentRow {
  userId: string;
  /** null when the column was never written (legacy rows): treated as active. */
  active: boolean | null;
  status: number | null;
}

/** The processor settings that shape reads (config.ts documents each one). */
export type EnrolmentReadSettings = Pick<
  Settings['processor'],
  | 'readPlan'
  | 'pageSize'
  | 'scanRanges'
  | 'scanConcurrency'
  | 'indexProbeRows'
  | 'indexProbeMs'
  | 'scanRowsPerIndexRow'
  | 'keyLookupConcurrency'
>;

export interface BatchReadReport {
  plan: 'index' | 'scan' | 'index+scan' | 'index+index';
  reason: string;
}

const DENSITY_SAMPLE_PARTS = 4096;

type Pager = (range: TokenRange, pageState: string | undefined) => Promise<types.ResultSet>;

/**
 * Reads of sunbird_courses.user_enrolments. The table is partitioned by user, so a whole batch
 * is read either through a storage-attached index on batchid or by a token-range scan with the
 * clustering columns restricted; docs/read-plan.md says how the choice is made and why.
 */
export class EnrolmentReader {
  private readonly table: string;
  private indexName: string | null | undefined;

  constructor(
    private readonly client: Client,
    keyspace: string,
    private readonly settings: EnrolmentReadSettings,
    private readonly log?: Logger,
  ) {
    this.table = `${keyspace}.user_enrolments`;
    this.keyspace = keyspace;
  }

  private readonly keyspace: string;

  /** The enrolments that exist among `userIds`, read by full primary key. Missing users are left out. */
  async findByKeys(courseId: string, batchId: string, userIds: readonly string[]): Promise<EnrolmentRow[]> {
    const query = `SELECT userid, active, status FROM ${this.table} WHERE userid = ? AND courseid = ? AND batchid = ?`;
    const found = await mapConcurrent(userIds, this.settings.keyLookupConcurrency, async (userId) => {
      try {
        const rs = await this.client.execute(query, [userId, courseId, batchId], { prepare: true });
        const row = rs.first();
        return row ? toEnrolment(row) : undefined;
      } catch (err) {
        throw translateCassandraError(err, 'reading enrolments by key');
      }
    });
    return found.filter((r): r is EnrolmentRow => r !== undefined);
  }

  /** Reads `userIds` by key in chunks, so a long list never sits in memory as rows. */
  async *findByKeysInChunks(
    courseId: string,
    batchId: string,
    userIds: readonly string[],
    chunkSize: number,
    signal?: AbortSignal,
  ): AsyncGenerator<EnrolmentRow[]> {
    for (let i = 0; i < userIds.length; i += chunkSize) {
      if (signal) throwIfAborted(signal);
      const rows = await this.findByKeys(courseId, batchId, userIds.slice(i, i + chunkSize));
      if (rows.length > 0) yield rows;
    }
  }

  async batchExists(courseId: string, batchId: string): Promise<boolean> {
    try {
      const rs = await this.client.execute(
        `SELECT batchid FROM ${this.keyspace}.course_batch WHERE courseid = ? AND batchid = ?`,
        [courseId, batchId],
        { prepare: true },
      );
      return rs.rowLength > 0;
    } catch (err) {
      throw translateCassandraError(err, 'reading course_batch');
    }
  }

  /** Whether a secondary index on user_enrolments.batchid exists (looked up once). */
  async batchIndex(): Promise<string | null> {
    if (this.indexName !== undefined) return this.indexName;
    try {
      const rs = await this.client.execute(
        'SELECT index_name, options FROM system_schema.indexes WHERE keyspace_name = ? AND table_name = ?',
        [this.keyspace, 'user_enrolments'],
        { prepare: true },
      );
      const match = rs.rows.find((row) => {
        const target = (row.options as Record<string, string> | null)?.target ?? '';
        return target.replace(/"/g, '') === 'batchid';
      });
      this.indexName = match ? String(match.index_name) : null;
    } catch (err) {
      throw translateCassandraError(err, 'reading index metadata');
    }
    return this.indexName;
  }

  /**
   * Every enrolment of (courseId, batchId), in pages. Memory stays bounded: pages are read only
   * as fast as the caller takes them.
   */
  async *readBatch(
    courseId: string,
    batchId: string,
    signal: AbortSignal,
    report?: (r: BatchReadReport) => void,
  ): AsyncGenerator<EnrolmentRow[]> {
    const plan = this.settings.readPlan;
    const index = plan === 'scan' ? null : await this.batchIndex();
    if (index === null) {
      if (plan === 'index') {
        throw new SyncError('SYNC_CONFIG', 'SYNC_READ_PLAN=index but user_enrolments has no index on batchid', {
          retriable: false,
        });
      }
      report?.({ plan: 'scan', reason: plan === 'scan' ? 'configured' : 'no index on batchid' });
      yield* this.parallelRanges({ start: MIN_TOKEN, end: MAX_TOKEN }, signal, this.scanPager(courseId, batchId));
      return;
    }
    if (plan === 'index') {
      report?.({ plan: 'index', reason: 'configured' });
      yield* this.parallelRanges({ start: MIN_TOKEN, end: MAX_TOKEN }, signal, this.indexPager(courseId, batchId));
      return;
    }

    // auto: ask the index first. A small batch is finished within the probe (a few ms whatever
    // the table's size). A big one tells us, from how far along the ring the probe got, about how
    // big it is, and the rest of the ring is read by whichever plan costs less.
    let seen = 0;
    let lastToken = MIN_TOKEN;
    let usersAtLastToken = new Set<string>();
    let pageState: string | undefined;
    const probeStarted = Date.now();
    for (;;) {
      throwIfAborted(signal);
      const page = await this.indexPage(courseId, batchId, { start: MIN_TOKEN, end: MAX_TOKEN }, pageState, true);
      const rows: EnrolmentRow[] = [];
      for (const row of page.rows) {
        const token = BigInt(String(row.t));
        if (token !== lastToken) usersAtLastToken = new Set();
        lastToken = token;
        usersAtLastToken.add(String(row.userid));
        rows.push(toEnrolment(row));
      }
      seen += rows.length;
      if (rows.length > 0) yield rows;
      pageState = page.pageState;
      if (!pageState) {
        report?.({ plan: 'index', reason: `batch finished within the index probe (${seen} rows)` });
        return;
      }
      if (seen >= this.settings.indexProbeRows || Date.now() - probeStarted >= this.settings.indexProbeMs) break;
    }

    const covered = Math.max(ringFraction(lastToken), 1e-9);
    const rest: TokenRange = { start: lastToken - 1n, end: MAX_TOKEN };
    const batchRowsLeft = (seen / covered) * (1 - covered);
    const tableRowsLeft = await this.estimateRows(rest);
    const useScan = tableRowsLeft / this.settings.scanRowsPerIndexRow < batchRowsLeft;
    const reason =
      `probe read ${seen} rows over ${(covered * 100).toFixed(2)}% of the ring in ${Date.now() - probeStarted} ms; ` +
      `about ${Math.round(batchRowsLeft)} batch rows among ${Math.round(tableRowsLeft)} table rows remain`;
    report?.({ plan: useScan ? 'index+scan' : 'index+index', reason });
    this.log?.info({ courseId, batchId, plan: useScan ? 'scan' : 'index', reason }, 'read plan chosen');
    const skip = usersAtLastToken;
    const pager = useScan ? this.scanPager(courseId, batchId) : this.indexPager(courseId, batchId);
    const rows = this.parallelRanges(rest, signal, pager);
    for await (const page of rows) {
      // The first range restarts at the probe's last token, whose users were already read.
      yield skip.size > 0 ? page.filter((r) => !skip.has(r.userId)) : page;
    }
  }

  private indexPager(courseId: string, batchId: string): Pager {
    return (range, pageState) => this.indexPage(courseId, batchId, range, pageState);
  }

  private scanPager(courseId: string, batchId: string): Pager {
    return (range, pageState) => this.scanPage(courseId, batchId, range, pageState);
  }

  private parallelRanges(range: TokenRange, signal: AbortSignal, fetchPage: Pager): AsyncGenerator<EnrolmentRow[]> {
    const sources = splitRange(range, this.settings.scanRanges).map(
      (r) =>
        async function* () {
          let pageState: string | undefined;
          do {
            throwIfAborted(signal);
            const page = await fetchPage(r, pageState);
            if (page.rows.length > 0) yield page.rows.map(toEnrolment);
            pageState = page.pageState;
          } while (pageState);
        },
    );
    return mergeBounded(sources, this.settings.scanConcurrency, this.settings.scanConcurrency * 2);
  }

  private async indexPage(
    courseId: string,
    batchId: string,
    range: TokenRange,
    pageState: string | undefined,
    withToken = false,
  ): Promise<types.ResultSet> {
    // Served by the batchid index; courseid is checked on the replica. Only the probe needs each
    // row's token (to know how far round the ring it got); decoding it costs an object a row.
    const query =
      `SELECT ${withToken ? 'token(userid) AS t, ' : ''}userid, active, status FROM ${this.table} ` +
      'WHERE batchid = ? AND courseid = ? AND token(userid) > ? AND token(userid) <= ? ALLOW FILTERING';
    return this.page(query, [batchId, courseId, long(range.start), long(range.end)], pageState, 'index read');
  }

  private async scanPage(
    courseId: string,
    batchId: string,
    range: TokenRange,
    pageState: string | undefined,
  ): Promise<types.ResultSet> {
    // A multi-column slice on the clustering key: each partition is read at exactly the
    // (courseid, batchid) row, and no secondary index can serve it, so this stays a plain scan
    // even when the batchid index exists.
    const query =
      `SELECT userid, active, status FROM ${this.table} ` +
      'WHERE token(userid) > ? AND token(userid) <= ? AND (courseid, batchid) >= (?, ?) AND (courseid, batchid) <= (?, ?) ALLOW FILTERING';
    return this.page(
      query,
      [long(range.start), long(range.end), courseId, batchId, courseId, batchId],
      pageState,
      'token-range scan',
    );
  }

  private async page(
    query: string,
    params: unknown[],
    pageState: string | undefined,
    what: string,
  ): Promise<types.ResultSet> {
    try {
      return await this.client.execute(query, params, {
        prepare: true,
        fetchSize: this.settings.pageSize,
        pageState,
        autoPage: false,
      });
    } catch (err) {
      throw translateCassandraError(err, what);
    }
  }

  /** Estimates the table's rows in `range` by counting a small slice of it. */
  private async estimateRows(range: TokenRange): Promise<number> {
    const width = range.end - range.start;
    const sliceWidth = width / BigInt(DENSITY_SAMPLE_PARTS) || 1n;
    const slice = { start: range.start, end: range.start + sliceWidth };
    try {
      const rs = await this.client.execute(
        `SELECT count(*) AS n FROM ${this.table} WHERE token(userid) > ? AND token(userid) <= ?`,
        [long(slice.start), long(slice.end)],
        { prepare: true },
      );
      const n = Number(String(rs.first()?.n ?? 0));
      return n * Number(width / sliceWidth);
    } catch (err) {
      throw translateCassandraError(err, 'estimating table size');
    }
  }
}

function long(value: bigint): types.Long {
  return types.Long.fromString(value.toString());
}

function toEnrolment(row: types.Row): EnrolmentRow {
  return {
    userId: String(row.userid),
    active: row.active === null || row.active === undefined ? null : Boolean(row.active),
    status: row.status === null || row.status === undefined ? null : Number(row.status),
  };
}
