import { describeOutage } from './outage';

/** Stops the shared Kafka broker for ~20 s: run alone, after everything else (jest project faults-servers). */
describe('Kafka broker outage during a whole-batch expansion', () => {
  describeOutage('kafka');
});
