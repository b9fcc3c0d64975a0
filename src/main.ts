import { loadConfig } from './config';
import { isSyncError, messageOf } from './errors';
import { createLogger } from './observability/logger';
import { EnrolmentSyncService, type ServiceOptions } from './service';

/** Runs the API and/or the processor until SIGINT or SIGTERM; a second signal exits at once. */
export async function runService(options: ServiceOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const settings = loadConfig(env);
  const log = createLogger(settings.logLevel);
  const service = new EnrolmentSyncService(settings, log);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    log.info({ signal }, 'stopping');
    // stop() is bounded step by step; this is the backstop should any step hang regardless.
    setTimeout(() => process.exit(0), settings.processor.shutdownTimeoutMs + 5000).unref();
    void service.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  service.events.on('fatal', (err: unknown) => {
    // A processor that cannot do its work exits rather than idling: the orchestrator sees it.
    console.error(`error: processor stopped: ${isSyncError(err) ? `${err.code}: ${err.message}` : messageOf(err)}`);
    void service.stop().then(() => process.exit(isSyncError(err) && err.code === 'SYNC_CONFIG' ? 2 : 1));
  });
  try {
    await service.start(options);
  } catch (err) {
    // start() has closed whatever it had opened.
    log.error({ err }, 'failed to start');
    throw err;
  }
  const parts = [
    options.api && `API ${service.url}`,
    options.processor && `processor on ${settings.topics.trigger}`,
    service.healthUrl && `health ${service.healthUrl}`,
  ];
  console.error(
    `enrolment-sync running: ${parts.filter(Boolean).join('; ')} → ${settings.topics.output}. Ctrl-C stops.`,
  );
  if (options.api) {
    console.error(
      `Try (after \`make seed\`): curl -s -X PATCH ${service.url}/v1/content/state/update -H 'Content-Type: application/json' ` +
        `-d '{"request":{"userId":"user-000001","batchId":"demo_batch_1","courseId":"do_demo_course"}}'`,
    );
  }
}

export function exitOnError(err: unknown): never {
  console.error(`error: ${isSyncError(err) ? err.message : messageOf(err)}`);
  process.exit(isSyncError(err) && (err.code === 'SYNC_CONFIG' || err.code === 'SYNC_BAD_REQUEST') ? 2 : 1);
}
