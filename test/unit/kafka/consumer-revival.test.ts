import { EventEmitter } from 'node:events';
import type { Consumer, ConsumerRunConfig } from 'kafkajs';
import { reviveAfterOutages } from '../../../src/kafka/consumer-revival';
import { createLogger } from '../../../src/observability/logger';
import { sleep } from '../../../src/util/async';

/**
 * The decisions of reviveAfterOutages, against a stand-in for the consumer's surface it uses
 * (crash events, connect, run). That kafkajs really stops for good on
 * KafkaJSGroupCoordinatorNotFound, and that the processor then resumes, is what the Kafka-outage
 * fault test (test/faults/servers) sees against a real broker.
 */
class ConsumerStandIn extends EventEmitter {
  readonly events = { CRASH: 'consumer.crash' };
  runs = 0;
  connects = 0;
  failNextRuns = 0;
  async connect(): Promise<void> {
    this.connects++;
  }
  async run(_config: ConsumerRunConfig): Promise<void> {
    this.runs++;
    if (this.failNextRuns > 0) {
      this.failNextRuns--;
      throw Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), {
        name: 'KafkaJSConnectionError',
      });
    }
  }
  crash(error: Error, restart: boolean): void {
    this.emit(this.events.CRASH, { payload: { error, restart } });
  }
}

function coordinatorNotFound(): Error {
  return Object.assign(new Error('Failed to find group coordinator'), { name: 'KafkaJSGroupCoordinatorNotFound' });
}

async function until(test: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}

function setup() {
  const consumer = new ConsumerStandIn();
  const fatal: unknown[] = [];
  const state = { stopping: false };
  reviveAfterOutages(
    consumer as unknown as Consumer,
    {},
    {
      what: 'test consumer',
      log: createLogger('silent'),
      stopping: () => state.stopping,
      onFatal: (err) => fatal.push(err),
    },
  );
  return { consumer, fatal, state };
}

describe('a consumer kafkajs gives up on', () => {
  test('after an outage it will not restart from (group coordinator not found), it is connected and run again', async () => {
    const { consumer, fatal } = setup();
    consumer.crash(coordinatorNotFound(), false);
    await until(() => consumer.runs === 1);
    expect(consumer.connects).toBe(1);
    expect(fatal).toEqual([]);
  });

  test('a start that fails while the broker is still away is tried again, with backoff, until it works', async () => {
    const { consumer, fatal } = setup();
    consumer.failNextRuns = 2;
    consumer.crash(coordinatorNotFound(), false);
    await until(() => consumer.runs === 3);
    await sleep(1200);
    expect(consumer.runs).toBe(3);
    expect(fatal).toEqual([]);
  });

  test('a crash kafkajs restarts itself is left to it', async () => {
    const { consumer } = setup();
    consumer.crash(coordinatorNotFound(), true);
    await sleep(1200);
    expect(consumer.runs).toBe(0);
  });

  test('refused access is not an outage: it is reported as fatal, not retried', async () => {
    const { consumer, fatal } = setup();
    consumer.crash(Object.assign(new Error('Not authorized'), { type: 'GROUP_AUTHORIZATION_FAILED' }), false);
    await sleep(1200);
    expect(consumer.runs).toBe(0);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ code: 'SYNC_UNAUTHORIZED' });
  });

  test('nothing is started again once the owner is stopping', async () => {
    const { consumer, state } = setup();
    consumer.crash(coordinatorNotFound(), false);
    state.stopping = true;
    await sleep(1200);
    expect(consumer.runs).toBe(0);
  });
});
