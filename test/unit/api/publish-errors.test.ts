import type { AddressInfo } from 'node:net';
import { createApp } from '../../../src/api/app';
import { SyncError, type ErrorCode } from '../../../src/errors';
import { createLogger } from '../../../src/observability/logger';
import { createMetrics } from '../../../src/observability/metrics';

/**
 * How the API answers when publishing the trigger fails: what the client may retry is a 503 in
 * the envelope, whatever the producer's trouble; only a bug is a 500. (The integration tests see
 * the same with a real Kafka refusing sends; these pin the mapping of every kind.)
 */
async function answerWhenPublishThrows(err: Error): Promise<{ status: number; body: Record<string, unknown> }> {
  const app = createApp({
    findEnrolments: async (_c, _b, userIds) => userIds.map((userId) => ({ userId, active: true, status: 1 })),
    publishTrigger: async () => {
      throw err;
    },
    policy: { includeInactive: false, includeCompleted: true },
    maxUsersPerRequest: 10,
    bodyLimitBytes: 10_000,
    dependencyTimeoutMs: 5_000,
    log: createLogger('silent'),
    metrics: createMetrics(),
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/v1/content/state/update`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request: { courseId: 'c', batchId: 'b', userId: 'u1' } }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('a failed trigger publish', () => {
  test.each<[ErrorCode, boolean]>([
    ['SYNC_KAFKA_UNAVAILABLE', true],
    ['SYNC_KAFKA_REQUEST_FAILED', true],
    // A fenced producer sent nothing durable and is replaced: retrying is safe.
    ['SYNC_FENCED', false],
  ])('%s answers 503 in the envelope', async (code, retriable) => {
    const { status, body } = await answerWhenPublishThrows(new SyncError(code, 'publishing: refused', { retriable }));
    expect(status).toBe(503);
    expect(body).toMatchObject({ responseCode: 'SERVICE_UNAVAILABLE', params: { status: 'failed' } });
  });

  test('an unexpected error is a 500 envelope that does not leak its message', async () => {
    const { status, body } = await answerWhenPublishThrows(new TypeError('secret internals'));
    expect(status).toBe(500);
    expect(JSON.stringify(body)).not.toContain('secret internals');
    expect(body).toMatchObject({ responseCode: 'SERVER_ERROR' });
  });
});
