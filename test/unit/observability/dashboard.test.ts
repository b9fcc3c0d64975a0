import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { createMetrics } from '../../../src/observability/metrics';

/**
 * docs/grafana-dashboard.json and docs/metrics.md against the metrics the code registers, so
 * neither can drift: every series a panel queries exists, every metric is documented, and the
 * documented "panels" column is what the dashboard really does.
 */
const docs = path.resolve(__dirname, '../../../docs');
const dashboard = JSON.parse(readFileSync(path.join(docs, 'grafana-dashboard.json'), 'utf8'));
const metricsDoc = readFileSync(path.join(docs, 'metrics.md'), 'utf8');

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or']);
const PROMQL_WORDS_MORE = new Set(['unless', 'offset', 'inf', 'nan']);

/** The metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?\w+\}?/g, ' ') // dashboard variables
    .replace(/(?<![\w:])\d[\w.]*/g, ' '); // numbers and durations (offset 5m)
  const names = new Set<string>();
  for (const match of bare.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = match;
    if (call || PROMQL_WORDS.has(name as string) || PROMQL_WORDS_MORE.has((name as string).toLowerCase())) continue;
    names.add(name as string);
  }
  return [...names];
}

interface Panel {
  title: string;
  type: string;
  targets?: Array<{ expr: string }>;
  panels?: Panel[];
}

const panels: Panel[] = (dashboard.panels as Panel[]).flatMap((p) => [p, ...(p.panels ?? [])]);
const queried = (p: Panel): string[] => (p.targets ?? []).flatMap((t) => metricNames(t.expr));

interface Registered {
  type: string;
  labels: string[];
  series: string[];
}

/** What the processor and the API export: ours and prom-client's process and Node.js metrics. */
function registered(): Map<string, Registered> {
  const metrics = createMetrics(new Registry(), true).registry.getMetricsAsArray() as unknown as Array<{
    name: string;
    type: string;
    labelNames?: string[];
  }>;
  return new Map(
    metrics.map((m) => [
      m.name,
      {
        type: String(m.type),
        labels: m.labelNames ?? [],
        series: String(m.type) === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => m.name + s) : [m.name],
      },
    ]),
  );
}

/** The metric a queried series belongs to (a histogram's _bucket is the histogram). */
function metricOf(series: string, metrics: Map<string, { series: string[] }>): string | undefined {
  for (const [name, m] of metrics) if (m.series.includes(series)) return name;
  return undefined;
}

describe('metric names in PromQL', () => {
  test('finds metrics, skips functions, keywords, labels, ranges and variables', () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_seconds_bucket{job=~"$job", route="sync"}[$__rate_interval]))) / on (instance) b_total offset 5m',
      ).sort(),
    ).toEqual(['a_seconds_bucket', 'b_total']);
    expect(metricNames('sum(increase(c_total{code=~"SYNC_.*"}[$__range]))')).toEqual(['c_total']);
    expect(metricNames('d_total > 1e3 and e2_bytes * 2')).toEqual(['d_total', 'e2_bytes']);
  });
});

describe('docs/grafana-dashboard.json', () => {
  test('every panel queries series that createMetrics() registers', () => {
    const metrics = registered();
    const queries = panels.filter((p) => p.type !== 'row');
    expect(queries.length).toBeGreaterThanOrEqual(10);
    for (const panel of queries) {
      const names = queried(panel);
      expect({ panel: panel.title, names: names.length > 0 }).toEqual({ panel: panel.title, names: true });
      for (const name of names) {
        expect({ panel: panel.title, name, known: metricOf(name, metrics) !== undefined }).toEqual({
          panel: panel.title,
          name,
          known: true,
        });
      }
    }
  });

  test('the datasource is a variable, and every query goes through it', () => {
    const variables = dashboard.templating.list as Array<{ name: string; type: string; query: unknown }>;
    expect(variables).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      expect((panel as unknown as { datasource: unknown }).datasource).toEqual({
        type: 'prometheus',
        uid: '${datasource}',
      });
    }
    const ids = panels.map((p) => (p as unknown as { id: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('docs/metrics.md', () => {
  /** Rows of the tables: | `name` | type | labels | meaning | panels | */
  const rows = new Map<string, { type: string; labels: string; panels: string[] }>();
  for (const line of metricsDoc.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const name = /^`([a-z_:][a-z0-9_:]*)`$/.exec(cells[1] ?? '')?.[1];
    if (!name || cells.length < 7) continue;
    const panelCell = cells[5] as string;
    rows.set(name, {
      type: cells[2] as string,
      labels: cells[3] as string,
      panels: panelCell === '—' ? [] : panelCell.split(';').map((p) => p.trim().replace(/^"|"$/g, '')),
    });
  }

  test('lists every metric createMetrics() registers, with its type and labels', () => {
    const metrics = registered();
    expect(metrics.size).toBeGreaterThan(30);
    for (const [name, m] of metrics) {
      const row = rows.get(name);
      expect({ metric: name, type: row?.type }).toEqual({ metric: name, type: m.type });
      const documented = [...(row?.labels ?? '').matchAll(/`(\w+)`/g)].map((x) => x[1]).sort();
      expect({ metric: name, labels: documented }).toEqual({ metric: name, labels: [...m.labels].sort() });
    }
    for (const name of rows.keys()) expect({ name, registered: metrics.has(name) }).toEqual({ name, registered: true });
  });

  test("each metric's panels are exactly the dashboard panels that query it", () => {
    const metrics = registered();
    for (const [name, row] of rows) {
      const using = panels
        .filter((p) => queried(p).some((series) => metricOf(series, metrics) === name))
        .map((p) => p.title)
        .sort();
      expect({ metric: name, panels: [...row.panels].sort() }).toEqual({ metric: name, panels: using });
    }
  });
});
