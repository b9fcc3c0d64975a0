import type { Client } from 'cassandra-driver';
import { mapConcurrent } from '../util/async';
import { translateCassandraError } from './client';

export interface SeedEnrolment {
  userId: string;
  courseId: string;
  batchId: string;
  active: boolean;
  status: number;
}

/**
 * Concurrent prepared inserts into user_enrolments: the fastest way in from one client, since
 * rows of a batch live in different partitions (batches of them would only add coordinator work).
 */
export async function insertEnrolments(
  client: Client,
  keyspace: string,
  rows: Iterable<SeedEnrolment>,
  concurrency = 128,
  onProgress?: (written: number) => void,
): Promise<number> {
  const query =
    `INSERT INTO ${keyspace}.user_enrolments (userid, courseid, batchid, active, status, progress, ` +
    'completionpercentage, enrolled_date, addedby, contentstatus) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
  let written = 0;
  let chunk: SeedEnrolment[] = [];
  const flush = async (): Promise<void> => {
    await mapConcurrent(chunk, concurrency, async (row) => {
      const done = row.status === 2;
      try {
        await client.execute(
          query,
          [
            row.userId,
            row.courseId,
            row.batchId,
            row.active,
            row.status,
            done ? 100 : 40,
            done ? 100 : 40,
            new Date(Date.UTC(2025, 0, 1)),
            'seed',
            { do_content_1: 2, do_content_2: done ? 2 : 1 },
          ],
          { prepare: true },
        );
      } catch (err) {
        throw translateCassandraError(err, 'seeding user_enrolments');
      }
    });
    written += chunk.length;
    chunk = [];
    onProgress?.(written);
  };
  for (const row of rows) {
    chunk.push(row);
    if (chunk.length >= concurrency * 50) await flush();
  }
  if (chunk.length > 0) await flush();
  return written;
}

export async function insertCourseBatch(
  client: Client,
  keyspace: string,
  courseId: string,
  batchId: string,
  name: string,
): Promise<void> {
  try {
    await client.execute(
      `INSERT INTO ${keyspace}.course_batch (courseid, batchid, name, status, enrollmenttype, start_date, created_date) ` +
        'VALUES (?, ?, ?, ?, ?, ?, ?)',
      [courseId, batchId, name, 1, 'open', new Date(Date.UTC(2025, 0, 1)), new Date()],
      { prepare: true },
    );
  } catch (err) {
    throw translateCassandraError(err, 'seeding course_batch');
  }
}

export interface DemoBatch {
  courseId: string;
  batchId: string;
  users: number;
  /** Every n-th user is inactive (active = false). */
  inactiveEvery: number;
  /** Every n-th user has completed the course (status = 2). */
  completedEvery: number;
}

export function* demoEnrolments(batch: DemoBatch): Generator<SeedEnrolment> {
  for (let i = 1; i <= batch.users; i++) {
    yield {
      userId: `user-${String(i).padStart(6, '0')}`,
      courseId: batch.courseId,
      batchId: batch.batchId,
      active: i % batch.inactiveEvery !== 0,
      status: i % batch.completedEvery === 0 ? 2 : 1,
    };
  }
}
