import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function secureTeardown(): void {
  if (process.env.SYNC_TEST_KEEP_SECURE === '1') return;
  const root = path.resolve(__dirname, '../..');
  execFileSync('bash', [path.join(root, 'infra/secure.sh'), 'down'], { stdio: 'inherit', cwd: root });
}
