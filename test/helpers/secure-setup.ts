import { execFileSync } from 'node:child_process';
import path from 'node:path';
import globalSetup from './global-setup';

/**
 * The secured servers live only as long as the `secure` project: started here (certificates and
 * passwords generated on first use into .run/secure), stopped by secure-teardown.ts unless
 * SYNC_TEST_KEEP_SECURE=1. The plain servers are needed too (the schema registry).
 */
export default function secureSetup(): void {
  globalSetup();
  const root = path.resolve(__dirname, '../..');
  execFileSync('bash', [path.join(root, 'infra/secure.sh'), 'up'], { stdio: 'inherit', cwd: root });
}
