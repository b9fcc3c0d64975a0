import { Registry } from 'prom-client';
import { errorCodes } from '../../../src/errors';
import { createMetrics } from '../../../src/observability/metrics';

describe('metrics', () => {
  test('outcome and dead-letter series exist at 0 from the start, so rate() sees the first one', async () => {
    const text = await createMetrics(new Registry()).registry.metrics();
    expect(text).toContain('sync_triggers_processed_total{outcome="done"} 0');
    expect(text).toContain('sync_triggers_processed_total{outcome="dead-lettered"} 0');
    for (const code of errorCodes) expect(text).toContain(`sync_triggers_dead_lettered_total{code="${code}"} 0`);
  });
});
