import { describeOutage } from './outage';

/** Stops the shared Cassandra for ~20 s: run alone, after everything else (jest project faults-servers). */
describe('Cassandra outage during a whole-batch expansion', () => {
  describeOutage('cassandra');
});
