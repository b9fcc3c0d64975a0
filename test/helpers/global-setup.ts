import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Integration tests run against real servers. `infra/services.sh up` starts whichever of Kafka,
 * Cassandra and the registry is not running (and returns at once when all are), then waits until
 * each answers; a failure here names the server and shows its log.
 */
export default function globalSetup(): void {
  if (process.env.SYNC_TEST_SKIP_SERVICES === '1') return;
  const root = path.resolve(__dirname, '../..');
  execFileSync('bash', [path.join(root, 'infra/services.sh'), 'up'], { stdio: 'inherit', cwd: root });
}
