/**
 * Summarises a V8 .cpuprofile (node --cpu-prof) by self time, for the CPU work of issue 11.
 *
 *   node dist/bench/profile-summary.js FILE.cpuprofile [--window REGEX] [--top N]
 *
 * --window crops the profile to the span between the first and the last sample whose stack holds
 * a function matching REGEX (e.g. writeSyncEventsJson): the expansion itself, without start-up and
 * the idle tail, which otherwise make up most of a short run's samples. Prints the busy time, the
 * share of each group (GC, our code, each package, node internals) and the top functions by self
 * time, each as a share of the busy (non-idle) samples.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a function lives: a package, our own code, node's internals, or V8's pseudo-frames. */
export function groupOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program (native, not attributed)';
    return 'native';
  }
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  return 'ours';
}

function shortUrl(url: string): string {
  const pkg = url.lastIndexOf('node_modules/');
  if (pkg >= 0) return url.slice(pkg + 'node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + '/dist/'.length);
  return url.replace(/^file:\/\//, '');
}

interface Summary {
  busyMs: number;
  idleMs: number;
  spanMs: number;
  groups: Array<[string, number]>;
  functions: Array<[string, number]>;
}

export function summarise(profile: CpuProfile, windowPattern?: RegExp): Summary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  // Sample i's time: the delta after it (V8 records the delta before each sample; the next one
  // is how long this sample's stack stood).
  const times: number[] = [];
  let t = profile.startTime;
  for (const delta of profile.timeDeltas) {
    t += delta;
    times.push(t);
  }
  let from = 0;
  let to = profile.samples.length;
  if (windowPattern) {
    const matches = (id: number): boolean => {
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        if (windowPattern.test((byId.get(at) as ProfileNode).callFrame.functionName)) return true;
      }
      return false;
    };
    const hits = new Map<number, boolean>();
    const hit = (id: number): boolean => {
      let h = hits.get(id);
      if (h === undefined) hits.set(id, (h = matches(id)));
      return h;
    };
    from = profile.samples.findIndex(hit);
    if (from < 0) throw new Error(`no sample matches ${windowPattern}`);
    to = profile.samples.length - [...profile.samples].reverse().findIndex(hit);
  }
  const self = new Map<number, number>();
  let idle = 0;
  let busy = 0;
  for (let i = from; i < to; i++) {
    const id = profile.samples[i] as number;
    const next = times[i + 1] ?? profile.endTime;
    const us = Math.max(0, next - (times[i] as number));
    if ((byId.get(id) as ProfileNode).callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    self.set(id, (self.get(id) ?? 0) + us);
  }
  const groups = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    const group = groupOf(frame);
    groups.set(group, (groups.get(group) ?? 0) + us);
    const name = `${frame.functionName || '(anonymous)'} ${frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : ''}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    spanMs: ((times[to - 1] ?? profile.endTime) - (times[from] ?? profile.startTime)) / 1000,
    groups: sorted(groups),
    functions: sorted(functions),
  };
}

function main(): void {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
  if (!file) {
    process.stderr.write('usage: profile-summary FILE.cpuprofile [--window REGEX] [--top N]\n');
    process.exit(2);
  }
  const option = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const window = option('--window');
  const top = Number(option('--top') ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const s = summarise(profile, window ? new RegExp(window) : undefined);
  const pct = (us: number) => ((100 * us) / 1000 / s.busyMs).toFixed(1).padStart(5);
  console.log(
    `span ${s.spanMs.toFixed(0)} ms${window ? ` (window /${window}/)` : ''}: busy ${s.busyMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms`,
  );
  console.log('\nby group, % of busy');
  for (const [name, us] of s.groups) console.log(`${pct(us)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`);
  console.log(`\ntop ${top} functions by self time, % of busy`);
  for (const [name, us] of s.functions.slice(0, top)) {
    console.log(`${pct(us)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`);
  }
}

if (require.main === module) main();
