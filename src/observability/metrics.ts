import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { errorCodes } from '../errors';

/** Metrics live in an injected registry so tests and several apps in one process never collide. */
export interface Metrics {
  registry: Registry;
  syncEventsProduced: Counter<'source'>;
  triggersProcessed: Counter<'outcome'>;
  triggersDeadLettered: Counter<'code'>;
  triggerExpandSeconds: Histogram<'plan'>;
  transactionsCommitted: Counter<'kind'>;
  apiRequests: Counter<'route' | 'status'>;
  apiRequestSeconds: Histogram<'route'>;
}

export function createMetrics(registry = new Registry(), withDefaults = false): Metrics {
  if (withDefaults) collectDefaultMetrics({ register: registry });
  const metrics: Metrics = {
    registry,
    syncEventsProduced: new Counter({
      name: 'sync_events_produced_total',
      help: 'Sync events acknowledged by Kafka',
      labelNames: ['source'],
      registers: [registry],
    }),
    triggersProcessed: new Counter({
      name: 'sync_triggers_processed_total',
      help: 'Triggers finished, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    triggersDeadLettered: new Counter({
      name: 'sync_triggers_dead_lettered_total',
      help: 'Triggers sent to the dead-letter topic, by error code',
      labelNames: ['code'],
      registers: [registry],
    }),
    triggerExpandSeconds: new Histogram({
      name: 'sync_trigger_expand_seconds',
      help: 'Time from trigger start to its last event acknowledged',
      labelNames: ['plan'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: [registry],
    }),
    transactionsCommitted: new Counter({
      name: 'sync_transactions_committed_total',
      help: 'Output units committed (transactions under exactly-once): checkpoint, final or wave',
      labelNames: ['kind'],
      registers: [registry],
    }),
    apiRequests: new Counter({
      name: 'sync_api_requests_total',
      help: 'API requests by route and HTTP status',
      labelNames: ['route', 'status'],
      registers: [registry],
    }),
    apiRequestSeconds: new Histogram({
      name: 'sync_api_request_seconds',
      help: 'API request latency',
      labelNames: ['route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    }),
  };
  // Series that exist from the start at 0: Prometheus's rate() and increase() cannot see a
  // counter's first increment when the series appears already at 1, so a process's first dead
  // letter would never show on the dashboard.
  for (const outcome of ['done', 'dead-lettered']) metrics.triggersProcessed.inc({ outcome }, 0);
  for (const code of errorCodes) metrics.triggersDeadLettered.inc({ code }, 0);
  return metrics;
}
