import type { StatusListQuery } from '../streams/status-store';
import { type TriggerState } from '../streams/status';

/** GET `${STATUS_PATH}?state=…&limit=…`: triggers running and recently finished, newest first. */
export const STATUS_LIST_API_ID = 'api.content.state.sync.list';
export const STATUS_LIST_DEFAULT_LIMIT = 50;
export const STATUS_LIST_MAX_LIMIT = 500;

const STATES: readonly TriggerState[] = ['accepted', 'running', 'done', 'failed', 'joined'];
/** Shorthands a person types: what is still going, and what is over. */
const STATE_GROUPS: Record<string, readonly TriggerState[]> = {
  active: ['accepted', 'running'],
  finished: ['done', 'failed', 'joined'],
};

export type StatusListParse = { ok: true; value: StatusListQuery } | { ok: false; field: string; message: string };

/**
 * Reads the list query from the raw query string (the app turns express's query parser off):
 * `state` is a comma-separated list of states or the groups `active` and `finished`, `limit`
 * 1…500 (50 when left out). A bad value is named, never guessed at.
 */
export function parseStatusListQuery(search: string): StatusListParse {
  if (search.length > 1024)
    return { ok: false, field: 'query', message: 'query string is longer than 1024 characters' };
  const params = new URLSearchParams(search);
  for (const name of params.keys()) {
    if (name !== 'state' && name !== 'limit') {
      return { ok: false, field: name, message: `unknown parameter '${name}'; use state and limit` };
    }
  }
  let limit = STATUS_LIST_DEFAULT_LIMIT;
  const rawLimit = params.getAll('limit');
  if (rawLimit.length > 1) return { ok: false, field: 'limit', message: 'limit is given more than once' };
  if (rawLimit.length === 1) {
    const text = rawLimit[0] as string;
    limit = /^[0-9]{1,4}$/.test(text) ? Number(text) : NaN;
    if (!(limit >= 1 && limit <= STATUS_LIST_MAX_LIMIT)) {
      return { ok: false, field: 'limit', message: `limit must be an integer from 1 to ${STATUS_LIST_MAX_LIMIT}` };
    }
  }
  const states = new Set<TriggerState>();
  for (const value of params.getAll('state')) {
    for (const word of value.split(',')) {
      const name = word.trim();
      if (name === '') continue;
      const group = STATE_GROUPS[name] ?? (STATES.includes(name as TriggerState) ? [name as TriggerState] : undefined);
      if (!group) {
        return {
          ok: false,
          field: 'state',
          message: `state must be one of ${[...STATES, ...Object.keys(STATE_GROUPS)].join(', ')}`,
        };
      }
      for (const s of group) states.add(s);
    }
  }
  return { ok: true, value: { limit, states: states.size > 0 ? [...states] : undefined } };
}
