import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import startServices from '../helpers/global-setup';

const root = path.resolve(__dirname, '../..');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * The fault tests run the built CLI (dist/src/cli.js) in child processes: start the servers as
 * the integration project does, and build dist/ when a source file is newer than the build, so
 * the processes under test are the code in the tree. SYNC_FAULTS_CLI (another build) skips it.
 */
export default function globalSetup(): void {
  startServices();
  if (process.env.SYNC_FAULTS_CLI) return;
  const cli = path.join(root, 'dist/src/cli.js');
  const built = existsSync(cli) ? statSync(cli).mtimeMs : 0;
  const sources = Math.max(newestSource(path.join(root, 'src')), newestSource(path.join(root, 'processors')));
  if (sources > built) {
    console.log('\nfaults: building dist/ (npx tsc -p tsconfig.json)');
    try {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
    } catch {
      // tsc still writes dist/ when it finds type errors; the tests show whether the build runs.
      console.warn('faults: tsc reported errors (above); testing what it emitted');
    }
  }
}
