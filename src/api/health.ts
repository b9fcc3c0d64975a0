import http from 'node:http';
import type { Metrics } from '../observability/metrics';

export interface HealthDeps {
  /** Consuming and not stopping: load balancers and orchestrators route by this. */
  isReady(): boolean;
  /** Why not ready, when there is a reason worth showing (a fatal error). */
  reason?(): string | undefined;
  metrics: Metrics;
}

/**
 * /health, /ready and /metrics for a process without the API (the `processor` command), on its
 * own port: liveness says the process answers, readiness that its consumer is running.
 */
export function createHealthServer(deps: HealthDeps): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { status: 'method not allowed' });
    if (path === '/health') return json(200, { status: 'ok' });
    if (path === '/ready') {
      const ready = deps.isReady();
      return json(ready ? 200 : 503, {
        status: ready ? 'ready' : 'not ready',
        reason: ready ? undefined : deps.reason?.(),
      });
    }
    if (path === '/metrics') {
      deps.metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': deps.metrics.registry.contentType });
          res.end(text);
        },
        () => json(500, { status: 'metrics unavailable' }),
      );
      return;
    }
    json(404, { status: 'not found' });
  });
}
