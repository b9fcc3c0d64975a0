import { parseStatusListQuery } from '../../../src/api/status-list';
import { routeLabel } from '../../../src/api/app';

describe('status list query', () => {
  test('defaults: 50 newest, every state', () => {
    expect(parseStatusListQuery('')).toEqual({ ok: true, value: { limit: 50, states: undefined } });
  });

  test('states by name, comma-separated or repeated, and the groups active and finished', () => {
    expect(parseStatusListQuery('state=running&limit=500')).toEqual({
      ok: true,
      value: { limit: 500, states: ['running'] },
    });
    expect(parseStatusListQuery('state=done,failed&state=running')).toMatchObject({
      value: { states: ['done', 'failed', 'running'] },
    });
    expect(parseStatusListQuery('state=active')).toMatchObject({ value: { states: ['accepted', 'running'] } });
    expect(parseStatusListQuery('state=finished,done')).toMatchObject({
      value: { states: ['done', 'failed', 'joined'] },
    });
    expect(parseStatusListQuery('state=%20running%20,')).toMatchObject({ value: { states: ['running'] } });
  });

  test.each([
    ['limit=0', 'limit'],
    ['limit=501', 'limit'],
    ['limit=-1', 'limit'],
    ['limit=1.5', 'limit'],
    ['limit=', 'limit'],
    ['limit=1e2', 'limit'],
    ['limit=10&limit=20', 'limit'],
    ['state=sleeping', 'state'],
    ['state=<script>', 'state'],
    ['sort=asc', 'sort'],
    [`state=${'a'.repeat(1100)}`, 'query'],
  ])('%s is refused, naming %s', (query, field) => {
    const parsed = parseStatusListQuery(query);
    expect(parsed).toMatchObject({ ok: false, field });
    // The refused value is never echoed back.
    if (!parsed.ok) expect(parsed.message).not.toContain('<script>');
  });

  test('the list and the page have metrics labels of their own', () => {
    expect(routeLabel('/v1/content/state/sync')).toBe('status_list');
    expect(routeLabel('/v1/content/state/sync/abc')).toBe('status');
    expect(routeLabel('/ui')).toBe('ui');
  });
});
