import pino, { type Logger } from 'pino';
import { logLevel as KafkaLogLevel, type logCreator } from 'kafkajs';

export type { Logger };

/** Logs go to stderr, so a command's own output on stdout stays clean to pipe. */
export function createLogger(level: string, name = 'enrolment-sync'): Logger {
  return pino({ name, level, base: { processor: name } }, pino.destination(2));
}

/**
 * The logger of a one-shot command (batch, status, dlq, migrate, watch): the command prints its
 * result, and a failure ends in one `error:` line naming the cause, so the Kafka client's retries
 * on the way there (a dozen JSON lines when Kafka is down) are left out unless LOG_LEVEL is set
 * to something other than its default, info.
 */
export function commandLogger(configuredLevel: string): Logger {
  return createLogger(configuredLevel === 'info' ? 'fatal' : configuredLevel);
}

// Our producers bound kafkajs's retries on purpose: a send that fails aborts its transaction
// (exactly-once) or is retried by the runtime from the checkpoint, so this warning does not apply.
const MISLEADING = /^Limiting retries for the idempotent producer/;

/** Routes kafkajs' own logs into pino, so one log stream carries everything. */
export function kafkaLogCreator(log: Logger): logCreator {
  return () =>
    ({ level, log: entry }) => {
      const { message, ...fields } = entry;
      if (MISLEADING.test(message)) return;
      const child = { ...fields, component: 'kafkajs' };
      switch (level) {
        case KafkaLogLevel.ERROR:
          log.error(child, message);
          break;
        case KafkaLogLevel.WARN:
          log.warn(child, message);
          break;
        case KafkaLogLevel.INFO:
          log.info(child, message);
          break;
        default:
          log.debug(child, message);
      }
    };
}
