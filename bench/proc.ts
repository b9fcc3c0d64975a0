/** What the benchmarks read of processes from /proc: CPU time, peak RSS, the local servers' pids. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');

export interface ProcStats {
  cpuMs: number;
  peakRssMb: number;
}

export function procStats(pid: number): ProcStats {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
  return { cpuMs: (ticks * 1000) / 100, peakRssMb: Math.round(Number(hwm?.[1] ?? 0) / 1024) };
}

/** A local server's pid, from infra/services.sh's pid file (undefined for a server we did not start). */
export function serverPid(name: 'kafka' | 'cassandra'): number | undefined {
  try {
    return Number(readFileSync(path.join(root, '.run', `${name}.pid`), 'utf8').trim()) || undefined;
  } catch {
    // A git worktree shares the servers of the checkout that started them: find the JVM by the
    // marker infra/services.sh puts on its command line.
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(`-Dservices.instance=${name}@`))
          return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
    return undefined;
  }
}

/** CPU ms of a process so far; NaN for none (a server we did not find). */
export function cpuMsOf(pid: number | undefined): number {
  return pid === undefined ? NaN : procStats(pid).cpuMs;
}
