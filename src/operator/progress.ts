import type { TriggerStatus } from '../streams/status';

/** One line for a status: what a person watching a repair wants at a glance. */
export function describeStatus(s: TriggerStatus): string {
  const parts = [`${s.triggerId}`, s.state];
  if (s.joinedTo) parts.push(`(joined ${s.joinedTo})`);
  parts.push(`${s.eventsProduced.toLocaleString('en-US')} events`);
  if (s.progress !== undefined && s.state !== 'done') parts.push(`${Math.floor(s.progress * 100)}%`);
  if (s.tasks.total > 0) parts.push(`tasks ${s.tasks.done}/${s.tasks.total}`);
  if (s.eventsPerSecond !== undefined) parts.push(`${s.eventsPerSecond.toLocaleString('en-US')}/s`);
  if (s.etaSeconds !== undefined) parts.push(`ETA ${formatSeconds(s.etaSeconds)}`);
  if (s.error) parts.push(`error ${s.error.code}: ${s.error.message}`);
  return parts.join('  ');
}

export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Done or failed: nothing more will change. */
export function isFinal(s: TriggerStatus): boolean {
  return s.state === 'done' || s.state === 'failed';
}
