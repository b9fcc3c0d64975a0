import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { errorCodes } from '../errors';

/** Metrics live in an injected registry so tests and several apps in one process never collide. */
export interface Metrics {
  registry: Registry;
  syncEventsProduced: Counter<'source'>;
  triggersProcessed: Counter<'outcome'>;
  triggersDeadLettered: Counter<'code'>;
  triggerExpandSeconds: Histogram<'outcome'>;
  transactionsCommitted: Counter<'kind'>;
  apiRequests: Counter<'route' | 'status'>;
  apiRequestSeconds: Histogram<'route'>;
  apiTriggersPerSend: Histogram<'outcome'>;
  apiSendSeconds: Histogram<'outcome'>;
  cassandraRequests: Counter<'outcome'>;
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
      help: 'Time this process spent on an input (a trigger or a fan-out task), from taking it to its last commit, by outcome',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
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
    // Group commit at work: the count is the API's trigger transactions, the sum their triggers.
    apiTriggersPerSend: new Histogram({
      name: 'sync_api_triggers_per_send',
      help: 'Triggers the API published together in one send (a transaction), by outcome',
      labelNames: ['outcome'],
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers: [registry],
    }),
    apiSendSeconds: new Histogram({
      name: 'sync_api_send_seconds',
      help: "Time of one of the API's trigger sends, from start to commit (or failure), by outcome",
      labelNames: ['outcome'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    }),
    // Counted by the driver's request tracker: shows which process reads how much (the processor
    // reads nothing for an API trigger that carries its enrolments).
    cassandraRequests: new Counter({
      name: 'sync_cassandra_requests_total',
      help: 'Requests this process sent to Cassandra (queries, not connection upkeep), by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
  // Series that exist from the start at 0: Prometheus's rate() and increase() cannot see a
  // counter's first increment when the series appears already at 1, so a process's first dead
  // letter would never show on the dashboard.
  for (const outcome of ['done', 'dead-lettered']) metrics.triggersProcessed.inc({ outcome }, 0);
  for (const code of errorCodes) metrics.triggersDeadLettered.inc({ code }, 0);
  for (const outcome of ['ok', 'error']) metrics.cassandraRequests.inc({ outcome }, 0);
  return metrics;
}
