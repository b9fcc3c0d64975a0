import { EnrolmentSyncService, type ServiceOptions } from '../../src/service';
import { insertCourseBatch, insertEnrolments, type SeedEnrolment } from '../../src/cassandra/seed';
import type { TestContext } from './context';
import { contract, trackApi } from './openapi';

export async function startService(ctx: TestContext, options: ServiceOptions): Promise<EnrolmentSyncService> {
  // Ephemeral ports: test files (and other checkouts' tests) run side by side.
  const service = new EnrolmentSyncService(
    {
      ...ctx.settings,
      api: { ...ctx.settings.api, port: 0 },
      processor: { ...ctx.settings.processor, healthPort: 0 },
    },
    ctx.log,
  );
  try {
    await service.start(options);
  } catch (err) {
    // No test gets a service that failed to start, to stop: what start opened (Cassandra, Kafka
    // clients) is closed here, or its connections keep jest running after the last test.
    await service.stop();
    throw err;
  }
  trackApi(service.url);
  return service;
}

export async function seed(
  ctx: TestContext,
  rows: SeedEnrolment[],
  batches: Array<[string, string]> = [],
): Promise<void> {
  for (const [courseId, batchId] of batches) {
    await insertCourseBatch(ctx.cassandra, ctx.settings.cassandra.keyspace, courseId, batchId, 'test batch');
  }
  await insertEnrolments(ctx.cassandra, ctx.settings.cassandra.keyspace, rows);
}

export function enrolment(
  userId: string,
  courseId: string,
  batchId: string,
  extra: Partial<SeedEnrolment> = {},
): SeedEnrolment {
  return { userId, courseId, batchId, active: true, status: 1, ...extra };
}

/** A PATCH to the API; its answer is checked against the OpenAPI document (a mismatch fails the test). */
export async function patch(
  url: string,
  body: unknown,
  headers: Record<string, string> = { 'Content-Type': 'application/json' },
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'PATCH',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  contract.check({
    method: 'PATCH',
    path: new URL(url).pathname,
    status: res.status,
    contentType: res.headers.get('content-type'),
    body: parsed,
  });
  return { status: res.status, body: parsed };
}
