import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { SyncTrigger } from '../../processors/enrolment-sync/trigger';
import { shouldSync, type EnrolmentPolicy } from '../../processors/enrolment-sync/expand';
import type { EnrolmentRow } from '../cassandra/enrolments';
import { isSyncError, messageOf, SyncError } from '../errors';
import type { PublishTrigger } from '../kafka/trigger-publisher';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { withDeadline } from '../util/async';
import { errorEnvelope, notEnrolledMessage, successEnvelope, type Envelope } from './envelope';
import { validateSyncRequest } from './validate';
import type { TriggerStatus } from '../streams/status';

export const SYNC_PATHS = ['/v1/content/state/update', '/v1/user/content/state'] as const;
/** GET `${STATUS_PATH}/{triggerId}`: a trigger's status, from any instance. */
export const STATUS_PATH = '/v1/content/state/sync';
export const STATUS_API_ID = 'api.content.state.sync.read';

export interface ApiDeps {
  findEnrolments(courseId: string, batchId: string, userIds: readonly string[]): Promise<EnrolmentRow[]>;
  publishTrigger: PublishTrigger;
  policy: EnrolmentPolicy;
  maxUsersPerRequest: number;
  bodyLimitBytes: number;
  dependencyTimeoutMs: number;
  log: Logger;
  metrics: Metrics;
  /** A trigger's status; without it the status endpoint answers 404. */
  getStatus?(triggerId: string): Promise<TriggerStatus | undefined>;
  /** Turns false first on shutdown, so load balancers stop sending before the server closes. */
  isReady?: () => boolean;
  now?: () => Date;
}

interface Locals {
  msgid: string;
}

export function createApp(deps: ApiDeps): express.Express {
  const now = deps.now ?? (() => new Date());
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const send = (res: Response, status: number, body: Envelope): void => {
    res.status(status).json(body);
  };
  const msgidOf = (res: Response): string => (res.locals as Locals).msgid;

  app.use((req, res, next) => {
    const header = req.get('x-msgid');
    (res.locals as Locals).msgid = header && header.trim() !== '' ? header.trim().slice(0, 256) : randomUUID();
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = SYNC_PATHS.includes(req.path as (typeof SYNC_PATHS)[number])
        ? 'sync'
        : req.path.startsWith(`${STATUS_PATH}/`)
          ? 'status'
          : req.path;
      deps.metrics.apiRequests.inc({ route, status: String(res.statusCode) });
      deps.metrics.apiRequestSeconds.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  });

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', (_req, res) => {
    const ready = deps.isReady?.() ?? true;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'stopping' });
  });
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  const requireJson = (req: Request, res: Response, next: NextFunction): void => {
    if (!req.is('application/json')) {
      send(
        res,
        415,
        errorEnvelope(
          msgidOf(res),
          now(),
          'UNSUPPORTED_MEDIA_TYPE',
          'Content-Type must be application/json.',
          'CLIENT_ERROR',
        ),
      );
      return;
    }
    next();
  };

  const handleSync = async (req: Request, res: Response): Promise<void> => {
    const msgid = msgidOf(res);
    const checked = validateSyncRequest(req.body, deps.maxUsersPerRequest);
    if (!checked.ok) {
      const { err, message, field } = checked.failure;
      send(res, 400, errorEnvelope(msgid, now(), err, message, 'CLIENT_ERROR', { field }));
      return;
    }
    const { courseId, batchId, userIds } = checked.value;
    const unavailable = (what: string) => () =>
      new SyncError('SYNC_TIMEOUT', `${what} did not answer within ${deps.dependencyTimeoutMs} ms`, {
        retriable: true,
      });

    try {
      const rows = await withDeadline(
        deps.findEnrolments(courseId, batchId, userIds),
        deps.dependencyTimeoutMs,
        unavailable('Cassandra'),
      );
      const enrolled = new Set(rows.filter((r) => shouldSync(r, deps.policy)).map((r) => r.userId));
      const enrolledUsers = userIds.filter((u) => enrolled.has(u));
      if (enrolledUsers.length === 0) {
        send(
          res,
          400,
          errorEnvelope(msgid, now(), 'CLIENT_ERROR', 'No users enrolled', 'CLIENT_ERROR', {
            response: notEnrolledMessage(userIds, batchId, courseId),
          }),
        );
        return;
      }
      const trigger: SyncTrigger = {
        triggerId: randomUUID(),
        courseId,
        batchId,
        userIds: enrolledUsers,
        requestedBy: req.get('x-authenticated-userid')?.trim() || 'api',
        requestedAt: now().getTime(),
        source: 'api',
        includeInactive: deps.policy.includeInactive,
        includeCompleted: deps.policy.includeCompleted,
      };
      await withDeadline(deps.publishTrigger(trigger), deps.dependencyTimeoutMs, unavailable('Kafka'));
      const notEnrolled = userIds.filter((u) => !enrolled.has(u));
      send(
        res,
        200,
        successEnvelope(msgid, now(), {
          response: 'Success',
          triggerId: trigger.triggerId,
          users: enrolledUsers.length,
          notEnrolled,
        }),
      );
    } catch (err) {
      if (isSyncError(err) && err.retriable) {
        deps.log.warn({ err, msgid }, 'dependency unavailable');
        send(
          res,
          503,
          errorEnvelope(
            msgid,
            now(),
            'SERVICE_UNAVAILABLE',
            `Service unavailable: ${messageOf(err)}`,
            'SERVICE_UNAVAILABLE',
          ),
        );
        return;
      }
      throw err;
    }
  };

  const parseJson = express.json({ limit: deps.bodyLimitBytes, type: 'application/json', strict: false });
  for (const path of SYNC_PATHS) {
    app.patch(path, requireJson, parseJson, handleSync);
    app.all(path, (req, res) => {
      res.set('Allow', 'PATCH');
      send(
        res,
        405,
        errorEnvelope(msgidOf(res), now(), 'METHOD_NOT_ALLOWED', `Use PATCH on ${req.path}.`, 'CLIENT_ERROR'),
      );
    });
  }

  app.get(`${STATUS_PATH}/:triggerId`, async (req, res) => {
    const msgid = msgidOf(res);
    const triggerId = String(req.params.triggerId ?? '');
    const notFound = (): void =>
      send(res, 404, {
        ...errorEnvelope(msgid, now(), 'RESOURCE_NOT_FOUND', `No trigger '${triggerId}'`, 'RESOURCE_NOT_FOUND', {
          triggerId,
        }),
        id: STATUS_API_ID,
      });
    if (!deps.getStatus || triggerId.length === 0 || triggerId.length > 1024) return notFound();
    try {
      const status = await withDeadline(
        deps.getStatus(triggerId),
        deps.dependencyTimeoutMs,
        () =>
          new SyncError('SYNC_TIMEOUT', `Kafka did not answer within ${deps.dependencyTimeoutMs} ms`, {
            retriable: true,
          }),
      );
      if (!status) return notFound();
      send(res, 200, { ...successEnvelope(msgid, now(), { response: 'Success', status }), id: STATUS_API_ID });
    } catch (err) {
      deps.log.warn({ err, msgid }, 'status unavailable');
      send(res, 503, {
        ...errorEnvelope(
          msgid,
          now(),
          'SERVICE_UNAVAILABLE',
          `Service unavailable: ${messageOf(err)}`,
          'SERVICE_UNAVAILABLE',
        ),
        id: STATUS_API_ID,
      });
    }
  });
  app.all(`${STATUS_PATH}/:triggerId`, (req, res) => {
    res.set('Allow', 'GET');
    send(res, 405, errorEnvelope(msgidOf(res), now(), 'METHOD_NOT_ALLOWED', `Use GET on ${req.path}.`, 'CLIENT_ERROR'));
  });

  app.use((req, res) => {
    send(
      res,
      404,
      errorEnvelope(
        msgidOf(res),
        now(),
        'RESOURCE_NOT_FOUND',
        `No such endpoint: ${req.method} ${req.path}`,
        'RESOURCE_NOT_FOUND',
      ),
    );
  });

  // Body-parser failures become 4xx envelopes; anything else is a 500 envelope, never a bare page.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const msgid = msgidOf(res) ?? randomUUID();
    const type = (err as { type?: string } | null)?.type;
    if (type === 'entity.parse.failed') {
      send(
        res,
        400,
        errorEnvelope(msgid, now(), 'INVALID_JSON', `Malformed JSON body: ${messageOf(err)}`, 'CLIENT_ERROR'),
      );
    } else if (type === 'entity.too.large') {
      send(
        res,
        413,
        errorEnvelope(
          msgid,
          now(),
          'PAYLOAD_TOO_LARGE',
          `Body is larger than ${deps.bodyLimitBytes} bytes.`,
          'CLIENT_ERROR',
        ),
      );
    } else if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
      send(res, 415, errorEnvelope(msgid, now(), 'UNSUPPORTED_MEDIA_TYPE', messageOf(err), 'CLIENT_ERROR'));
    } else if (type === 'request.aborted' || type === 'request.size.invalid' || type === 'stream.encoding.set') {
      send(res, 400, errorEnvelope(msgid, now(), 'BAD_REQUEST', messageOf(err), 'CLIENT_ERROR'));
    } else {
      deps.log.error({ err, msgid }, 'unexpected error in API');
      send(res, 500, errorEnvelope(msgid, now(), 'INTERNAL_ERROR', 'Internal error', 'SERVER_ERROR'));
    }
  });
  return app;
}
