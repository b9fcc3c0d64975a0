import { types, type Client } from 'cassandra-driver';
import type { Settings } from '../config';
import { SyncError } from '../errors';
import type { Logger } from '../observability/logger';
import { Budget, mapConcurrent, mergeBounded, throwIfAborted } from '../util/async';
import { translateCassandraError } from './client';
import { MAX_TOKEN, MIN_TOKEN, splitRange, tokenOf, type TokenRange } from './token-ranges';

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

/**
 * A token range still to be read: (start, end], as decimal strings so it survives JSON. `skip`
 * names the users at token start + 1 that were already read: several users can share a token,
 * so a resumed read starts at that token again and leaves those out.
 */
export interface RangeProgress {
  start: string;
  end: string;
  skip?: string[];
}

/**
 * Where a whole-batch read stands, exactly: the plan and the ranges not yet read. `probe` means
 * the auto plan had not decided yet; it probes again from where it stopped. An empty list: done.
 * This, not a driver paging state, is what a checkpoint records: a paging state is only valid
 * for the same protocol version and byte-identical statement.
 */
export interface ReadPosition {
  plan: 'probe' | 'index' | 'scan';
  ranges: RangeProgress[];
}

export interface BatchPage {
  /** Emptied when the next page is asked for (a whole-batch read's pages): copy what you keep. */
  rows: EnrolmentRow[];
  /** The position after these rows. */
  position: ReadPosition;
}

/**
 * Which of the optional columns a whole-batch read must return. A column left out is not read
 * nor decoded (the driver's per-row cost grows with the columns), and comes back null: a reader
 * whose policy keeps inactive users does not need `active`, one that keeps completed ones does
 * not need `status`.
 */
export interface EnrolmentColumns {
  active: boolean;
  status: boolean;
}

const ALL_COLUMNS: EnrolmentColumns = { active: true, status: true };

function selectList(columns: EnrolmentColumns): string {
  return `userid${columns.active ? ', active' : ''}${columns.status ? ', status' : ''}`;
}

export interface KeyPage {
  rows: EnrolmentRow[];
  /** How many of the requested ids have been read, these included. */
  next: number;
}

const DENSITY_SAMPLE_PARTS = 4096;

type Pager = (range: TokenRange, pageState: string | undefined) => Promise<types.ResultSet>;

interface RangeStep {
  index: number;
  /** Rows of the read-ahead budget this step holds until its consumer is done with it. */
  held: number;
  rows: EnrolmentRow[];
  /** The range's progress after these rows; null once the range is finished. */
  progress: RangeProgress | null;
}

/**
 * Reads of sunbird_courses.user_enrolments. The table is partitioned by user, so a whole batch
 * is read either through a storage-attached index on batchid or by a token-range scan with the
 * clustering columns restricted; docs/read-plan.md says how the choice is made and why.
 */
export class EnrolmentReader {
  private readonly table: string;
  private indexName: string | null | undefined;
  /**
   * Rows read ahead of their consumers, across every read of this reader (every input partition
   * of the process): what one read alone may hold, 2 × scanConcurrency pages. Without it, each
   * partition expanded at once held as much again, and the heap grew with the partitions.
   */
  private readonly readAhead: Budget;

  constructor(
    private readonly client: Client,
    keyspace: string,
    private readonly settings: EnrolmentReadSettings,
    private readonly log?: Logger,
  ) {
    this.table = `${keyspace}.user_enrolments`;
    this.keyspace = keyspace;
    this.readAhead = new Budget(2 * settings.scanConcurrency * settings.pageSize);
  }

  /** Rows read but not yet taken by their consumers (for tests and metrics). */
  get rowsReadAhead(): number {
    return this.readAhead.inUse;
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

  /**
   * Reads `userIds` by key in chunks, so a long list never sits in memory as rows. `from` resumes
   * after the ids a checkpoint says were read; every chunk is yielded, found rows or not.
   */
  async *findByKeysInChunks(
    courseId: string,
    batchId: string,
    userIds: readonly string[],
    chunkSize: number,
    signal?: AbortSignal,
    from = 0,
  ): AsyncGenerator<KeyPage> {
    for (let i = from; i < userIds.length; i += chunkSize) {
      if (signal) throwIfAborted(signal);
      const slice = userIds.slice(i, i + chunkSize);
      const rows = await this.findByKeys(courseId, batchId, slice);
      yield { rows, next: i + slice.length };
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

  /** The start tokens of the ranges the nodes own (empty when the driver knows no ring). */
  ringTokens(): bigint[] {
    const ranges = this.client.metadata?.getTokenRanges?.() ?? new Set();
    const starts = new Set<bigint>();
    for (const range of ranges) starts.add(BigInt(String(range.start.getValue())));
    return [...starts];
  }

  /** Where a fresh read of a whole batch starts under the configured plan. */
  async initialPosition(): Promise<ReadPosition> {
    const plan = this.settings.readPlan;
    const full = { start: MIN_TOKEN, end: MAX_TOKEN };
    if (plan === 'scan') return { plan: 'scan', ranges: splitRange(full, this.settings.scanRanges).map(toProgress) };
    const index = await this.batchIndex();
    if (index === null) {
      if (plan === 'index') throw noIndexError();
      return { plan: 'scan', ranges: splitRange(full, this.settings.scanRanges).map(toProgress) };
    }
    if (plan === 'index') return { plan: 'index', ranges: splitRange(full, this.settings.scanRanges).map(toProgress) };
    return { plan: 'probe', ranges: [toProgress(full)] };
  }

  /**
   * Every enrolment of (courseId, batchId), in pages, each with the exact position after it.
   * Memory stays bounded: pages are read only as fast as the caller takes them. `resumeFrom`
   * continues a read from a position an earlier page reported.
   */
  async *readBatch(
    courseId: string,
    batchId: string,
    signal: AbortSignal,
    opts: {
      resumeFrom?: ReadPosition;
      report?: (r: BatchReadReport) => void;
      stopAtScan?: boolean;
      columns?: EnrolmentColumns;
    } = {},
  ): AsyncGenerator<BatchPage> {
    const select = selectList(opts.columns ?? ALL_COLUMNS);
    let position = opts.resumeFrom ?? (await this.initialPosition());
    if (position.plan === 'index' && (await this.batchIndex()) === null) throw noIndexError();
    if (position.plan === 'probe' && (await this.batchIndex()) === null) {
      // The index went away since the read began: scan what is left.
      position = { plan: 'scan', ranges: position.ranges.flatMap((r) => splitProgress(r, this.settings.scanRanges)) };
    }
    if (!opts.resumeFrom && position.plan !== 'probe') {
      const configured = this.settings.readPlan !== 'auto';
      opts.report?.({ plan: position.plan, reason: configured ? 'configured' : 'no index on batchid' });
    }
    if (position.plan === 'probe') {
      const probe = this.probe(courseId, batchId, select, position.ranges[0] as RangeProgress, signal, opts.report);
      let next: IteratorResult<BatchPage, ReadPosition>;
      while (!(next = await probe.next()).done) yield next.value;
      position = next.value;
    }
    if (opts.stopAtScan && position.plan === 'scan' && position.ranges.length > 0) {
      // The caller splits a scan over the group instead: hand it the ranges, read nothing more.
      yield { rows: [], position };
      return;
    }
    const pager =
      position.plan === 'scan' ? this.scanPager(courseId, batchId, select) : this.indexPager(courseId, batchId, select);
    yield* this.readRanges(position, signal, pager);
  }

  /**
   * The auto plan: ask the index first. A small batch is finished within the probe (a few ms
   * whatever the table's size). A big one tells us, from how far along its range the probe got,
   * about how big it is, and the rest is read by whichever plan costs less. Returns the position
   * the rest starts from.
   */
  private async *probe(
    courseId: string,
    batchId: string,
    select: string,
    range: RangeProgress,
    signal: AbortSignal,
    report?: (r: BatchReadReport) => void,
  ): AsyncGenerator<BatchPage, ReadPosition> {
    let progress: RangeProgress = range;
    const first = { start: BigInt(range.start), end: BigInt(range.end) };
    let seen = 0;
    let pageState: string | undefined;
    const probeStarted = Date.now();
    for (;;) {
      throwIfAborted(signal);
      const page = await this.indexPage(courseId, batchId, select, first, pageState);
      const rows = withoutSkipped(page.rows.map(toEnrolment), range.skip);
      seen += rows.length;
      pageState = page.pageState;
      if (!pageState) {
        report?.({ plan: 'index', reason: `batch finished within the index probe (${seen} rows)` });
        yield { rows, position: { plan: 'probe', ranges: [] } };
        return { plan: 'index', ranges: [] };
      }
      progress = advance(progress, rows);
      yield { rows, position: { plan: 'probe', ranges: [progress] } };
      if (seen >= this.settings.indexProbeRows || Date.now() - probeStarted >= this.settings.indexProbeMs) break;
    }

    const lastToken = BigInt(progress.start) + 1n;
    const covered = Math.max(Number(lastToken - first.start) / Number(first.end - first.start), 1e-9);
    const rest: TokenRange = { start: BigInt(progress.start), end: first.end };
    const batchRowsLeft = (seen / covered) * (1 - covered);
    const tableRowsLeft = await this.estimateRows(rest);
    const useScan = tableRowsLeft / this.settings.scanRowsPerIndexRow < batchRowsLeft;
    const reason =
      `probe read ${seen} rows over ${(covered * 100).toFixed(2)}% of its range in ${Date.now() - probeStarted} ms; ` +
      `about ${Math.round(batchRowsLeft)} batch rows among ${Math.round(tableRowsLeft)} table rows remain`;
    report?.({ plan: useScan ? 'index+scan' : 'index+index', reason });
    this.log?.info({ courseId, batchId, plan: useScan ? 'scan' : 'index', reason }, 'read plan chosen');
    return { plan: useScan ? 'scan' : 'index', ranges: splitProgress(progress, this.settings.scanRanges) };
  }

  /**
   * Reads the position's ranges, `scanConcurrency` at a time, and reports after each page the
   * exact position reached: pages of different ranges interleave, but each range is read in
   * token order, so "the ranges not finished, each from its last token" is exact.
   */
  private async *readRanges(position: ReadPosition, signal: AbortSignal, fetchPage: Pager): AsyncGenerator<BatchPage> {
    const open = new Map<number, RangeProgress>(position.ranges.map((r, i) => [i, r]));
    const { pageSize } = this.settings;
    const budget = this.readAhead;
    // What this read holds of the shared budget; all of it goes back when the read ends, however
    // it ends (pages fetched but never taken included).
    let held = 0;
    let ended = false;
    const stop = new AbortController();
    const onAbort = (): void => stop.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const give = (amount: number): void => {
      held -= amount;
      budget.give(amount);
    };
    const sources = position.ranges.map(
      (range, index) =>
        async function* (): AsyncGenerator<RangeStep> {
          const bounds = { start: BigInt(range.start), end: BigInt(range.end) };
          let progress = range;
          let pageState: string | undefined;
          let firstPage = true;
          do {
            throwIfAborted(signal);
            await budget.take(pageSize, stop.signal);
            held += pageSize;
            if (ended) return give(pageSize);
            let page: { rows: EnrolmentRow[]; pageState: string | undefined };
            try {
              page = await fetchEnrolments(fetchPage, bounds, pageState);
            } catch (err) {
              if (!ended) give(pageSize);
              throw err;
            }
            const rows = firstPage ? withoutSkipped(page.rows, range.skip) : page.rows;
            firstPage = false;
            pageState = page.pageState;
            progress = advance(progress, rows);
            yield { index, held: pageSize, rows, progress: pageState ? progress : null };
          } while (pageState);
        },
    );
    const steps = mergeBounded(sources, this.settings.scanConcurrency, this.settings.scanConcurrency * 2);
    try {
      for await (const step of steps) {
        if (step.progress === null) open.delete(step.index);
        else open.set(step.index, step.progress);
        yield { rows: step.rows, position: { plan: position.plan, ranges: [...open.values()] } };
        // Asked for the next page: this one's records are with the sink.
        give(step.held);
        // Emptied, not just dropped: every frame the page passed through (its range's generator,
        // the merge, the processor's loop) still refers to it while suspended, which kept twice
        // the read-ahead's rows alive (docs/benchmarks.md, "Flat memory, fourth pass").
        step.rows.length = 0;
      }
    } finally {
      ended = true;
      signal.removeEventListener('abort', onAbort);
      stop.abort();
      give(held);
    }
  }

  private indexPager(courseId: string, batchId: string, select: string): Pager {
    return (range, pageState) => this.indexPage(courseId, batchId, select, range, pageState);
  }

  private scanPager(courseId: string, batchId: string, select: string): Pager {
    return (range, pageState) => this.scanPage(courseId, batchId, select, range, pageState);
  }

  private async indexPage(
    courseId: string,
    batchId: string,
    select: string,
    range: TokenRange,
    pageState: string | undefined,
  ): Promise<types.ResultSet> {
    // Served by the batchid index; courseid is checked on the replica.
    const query =
      `SELECT ${select} FROM ${this.table} ` +
      'WHERE batchid = ? AND courseid = ? AND token(userid) > ? AND token(userid) <= ? ALLOW FILTERING';
    return this.page(query, [batchId, courseId, long(range.start), long(range.end)], pageState, 'index read');
  }

  private async scanPage(
    courseId: string,
    batchId: string,
    select: string,
    range: TokenRange,
    pageState: string | undefined,
  ): Promise<types.ResultSet> {
    // A multi-column slice on the clustering key: each partition is read at exactly the
    // (courseid, batchid) row, and no secondary index can serve it, so this stays a plain scan
    // even when the batchid index exists.
    const query =
      `SELECT ${select} FROM ${this.table} ` +
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

function noIndexError(): SyncError {
  return new SyncError('SYNC_CONFIG', 'SYNC_READ_PLAN=index but user_enrolments has no index on batchid', {
    retriable: false,
  });
}

function toProgress(range: TokenRange): RangeProgress {
  return { start: range.start.toString(), end: range.end.toString() };
}

/** Splits what is left of a range; users already read at its first token stay skipped. */
function splitProgress(progress: RangeProgress, parts: number): RangeProgress[] {
  const ranges = splitRange({ start: BigInt(progress.start), end: BigInt(progress.end) }, parts).map(toProgress);
  if (progress.skip && ranges[0]) ranges[0].skip = progress.skip;
  return ranges;
}

function withoutSkipped(rows: EnrolmentRow[], skip: readonly string[] | undefined): EnrolmentRow[] {
  if (!skip || skip.length === 0) return rows;
  const skipped = new Set(skip);
  return rows.filter((r) => !skipped.has(r.userId));
}

/**
 * The progress of a range after `rows` (in token order): it now starts just before the last
 * row's token, skipping the users read at that token. Only the last rows are hashed, client-side
 * with the partitioner's own Murmur3, so no row pays for a token column.
 */
export function advance(progress: RangeProgress, rows: readonly EnrolmentRow[]): RangeProgress {
  const last = rows[rows.length - 1];
  if (!last) return progress;
  const token = tokenOf(last.userId);
  const atToken = [last.userId];
  for (let i = rows.length - 2; i >= 0 && tokenOf((rows[i] as EnrolmentRow).userId) === token; i--) {
    atToken.push((rows[i] as EnrolmentRow).userId);
  }
  const start = token - 1n;
  if (progress.skip && BigInt(progress.start) === start) atToken.push(...progress.skip);
  return { start: start.toString(), end: progress.end, skip: atToken };
}

function long(value: bigint): types.Long {
  return types.Long.fromString(value.toString());
}

/**
 * A page as our rows. The driver's ResultSet stays inside this function: a range's generator
 * that held it in a local kept the page's driver Rows alive while suspended at its yield, twice
 * the read-ahead's rows (70,000 Rows, 7 MB of old space, in a heap snapshot of the 1,000,000-user
 * expansion; docs/benchmarks.md, "Flat memory, fourth pass").
 */
async function fetchEnrolments(
  fetchPage: Pager,
  range: TokenRange,
  pageState: string | undefined,
): Promise<{ rows: EnrolmentRow[]; pageState: string | undefined }> {
  const page = await fetchPage(range, pageState);
  return { rows: page.rows.map(toEnrolment), pageState: page.pageState };
}

function toEnrolment(row: types.Row): EnrolmentRow {
  return {
    userId: String(row.userid),
    active: row.active === null || row.active === undefined ? null : Boolean(row.active),
    status: row.status === null || row.status === undefined ? null : Number(row.status),
  };
}
