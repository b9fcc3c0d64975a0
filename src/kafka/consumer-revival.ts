import type { Consumer, ConsumerRunConfig } from 'kafkajs';
import { errorKind } from '../errors';
import type { Logger } from '../observability/logger';
import { backoffDelay } from '../streams/retry';
import { sleep } from '../util/async';
import { translateKafkaError } from './client';

/**
 * kafkajs restarts a crashed consumer only when the crash is retriable. Some outage errors are
 * not: a broker that goes away while the group coordinator is being looked up ends in
 * KafkaJSGroupCoordinatorNotFound, and the consumer then stays stopped for good — a process that
 * looks alive and reads nothing. kafkajs has disconnected it by then (its group and runner are
 * gone, its subscription kept), so connecting and running it again is a clean restart.
 *
 * `onCrash` is told of every crash kafkajs will not restart. It returns false when the error is
 * not an outage (refused credentials, a missing grant): the caller fails on those. Outages are
 * waited out: the consumer is started again, with backoff, until that works or `stopping()`.
 */
export function reviveAfterOutages(
  consumer: Consumer,
  run: ConsumerRunConfig,
  opts: {
    what: string;
    log: Logger;
    stopping: () => boolean;
    onFatal: (err: unknown) => void;
  },
): void {
  let crashed: unknown;
  let reviving = false;
  const revive = async (): Promise<void> => {
    reviving = true;
    for (let attempt = 0; crashed !== undefined && !opts.stopping(); attempt++) {
      const err = crashed;
      crashed = undefined;
      const delayMs = backoffDelay(attempt, { retries: 0, initialDelayMs: 500, maxDelayMs: 10_000 });
      opts.log.warn({ err, attempt: attempt + 1, delayMs }, `${opts.what}: stopped by kafkajs; starting it again`);
      await sleep(delayMs);
      if (opts.stopping()) break;
      try {
        await consumer.connect();
        // A start that crashes again sets `crashed` (the handler below) and goes round once more.
        await consumer.run(run);
      } catch (startErr) {
        const translated = translateKafkaError(startErr, opts.what);
        if (errorKind(translated) !== 'outage') {
          opts.onFatal(translated);
          break;
        }
        crashed = translated;
      }
    }
    reviving = false;
  };
  consumer.on(consumer.events.CRASH, (event) => {
    const { error, restart } = event.payload;
    if (restart || opts.stopping()) return;
    const translated = translateKafkaError(error, opts.what);
    if (errorKind(translated) !== 'outage') {
      opts.onFatal(translated);
      return;
    }
    crashed = translated;
    if (!reviving) void revive();
  });
}
