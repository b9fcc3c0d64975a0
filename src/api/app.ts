import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { SyncTrigger } from '../../processors/enrolment-sync/trigger';
import { shouldSync, type EnrolmentPolicy } from '../../processors/enrolment-sync/expand';
import type { EnrolmentRow } from '../cassandra/enrolments';
import { errorKind, isSyncError, messageOf, SyncError } from '../errors';
import type { PublishTrigger } from '../kafka/trigger-publisher';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { withDeadline } from '../util/async';
import { isAuthFailure, type Authenticator, type Principal } from './auth';
import { errorEnvelope, notEnrolledMessage, successEnvelope, type Envelope } from './envelope';
import { openApiDocument } from './openapi';
import { DOCS_CSP, renderOpenApiPage } from './openapi-page';
import { validateSyncRequest } from './validate';
import type { TriggerStatus } from '../streams/status';
import type { StatusListQuery } from '../streams/status-store';
import { parseStatusListQuery, STATUS_LIST_API_ID } from './status-list';
import { STATUS_PAGE_HEADERS, STATUS_PAGE_HTML, STATUS_PAGE_PATH } from './status-page';

export const SYNC_PATHS = ['/v1/content/state/update', '/v1/user/content/state'] as const;
/** GET `${STATUS_PATH}/{triggerId}`: a trigger's status, from any instance. */
export const STATUS_PATH = '/v1/content/state/sync';
export const STATUS_API_ID = 'api.content.state.sync.read';

/**
 * The metrics label for a request: one of a fixed set, never the raw path (a scan of random
 * URLs must not grow Prometheus without bound).
 */
export function routeLabel(path: string): string {
  if ((SYNC_PATHS as readonly string[]).includes(path)) return 'sync';
  if (path.startsWith(`${STATUS_PATH}/`)) return 'status';
  if (path === STATUS_PATH) return 'status_list';
  if (path === STATUS_PAGE_PATH || path === `${STATUS_PAGE_PATH}/`) return 'ui';
  if (path === '/health' || path === '/ready' || path === '/metrics') return path.slice(1);
  if (path === '/openapi.json' || path === '/docs') return 'openapi';
  return 'unmatched';
}

/**
 * A request of at most this many enrolled users carries the rows the API read in its trigger.
 * The saving is one Cassandra read per request whatever its size, while the rows about double
 * a trigger's bytes: a long list keeps its trigger small and is read again by the processor.
 */
export const CARRIED_ENROLMENTS_MAX_USERS = 100;

/** Body-parser error types and what the client is told; any other 4xx it raises is BAD_REQUEST. */
const BODY_ERRORS: Record<string, string> = {
  'entity.parse.failed': 'INVALID_JSON',
  'entity.too.large': 'PAYLOAD_TOO_LARGE',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'charset.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
};

/** Headers every answer carries: an API of JSON, never framed, cached or sniffed. */
const SECURITY_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export interface ApiDeps {
  findEnrolments(courseId: string, batchId: string, userIds: readonly string[]): Promise<EnrolmentRow[]>;
  publishTrigger: PublishTrigger;
  /** A new trigger's id (a random UUID without it; see src/kafka/sticky-trigger-ids.ts). */
  newTriggerId?: () => string;
  policy: EnrolmentPolicy;
  maxUsersPerRequest: number;
  bodyLimitBytes: number;
  dependencyTimeoutMs: number;
  /** Requests handled at once (health, readiness and metrics do not count); more get 503. */
  maxInFlight?: number;
  /** Seconds a client is told to wait (Retry-After) with a 503. */
  retryAfterSeconds?: number;
  /** Bearer-token check; undefined means authentication is off (the single-machine default). */
  authenticate?: Authenticator;
  log: Logger;
  metrics: Metrics;
  /** A trigger's status; without it the status endpoint answers 404. */
  getStatus?(triggerId: string): Promise<TriggerStatus | undefined>;
  /** Triggers running and recently finished, newest first; without it the list is empty. */
  listStatus?(query: StatusListQuery): Promise<TriggerStatus[]>;
  /** Turns false first on shutdown, so load balancers stop sending before the server closes. */
  isReady?: () => boolean;
  now?: () => Date;
}

interface Locals {
  msgid: string;
  principal?: Principal;
}

export function createApp(deps: ApiDeps): express.Express {
  const now = deps.now ?? (() => new Date());
  const maxInFlight = deps.maxInFlight ?? Number.POSITIVE_INFINITY;
  const retryAfter = String(deps.retryAfterSeconds ?? 1);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Query strings are not used; do not spend work parsing hostile ones.
  app.set('query parser', false);

  const send = (res: Response, status: number, body: Envelope): void => {
    res.status(status).json(body);
  };
  const msgidOf = (res: Response): string => (res.locals as Locals).msgid;

  const serviceUnavailable = (res: Response, message: string): void => {
    res.set('Retry-After', retryAfter);
    send(res, 503, errorEnvelope(msgidOf(res), now(), 'SERVICE_UNAVAILABLE', message, 'SERVICE_UNAVAILABLE'));
  };

  let inFlight = 0;
  app.use((req, res, next) => {
    const header = req.get('x-msgid');
    // Echoed back in JSON only; printable ASCII keeps it a plain string.
    const clean = header?.replace(/[^\x20-\x7e]/g, '').trim();
    (res.locals as Locals).msgid = clean ? clean.slice(0, 256) : randomUUID();
    res.set(SECURITY_HEADERS);
    const started = process.hrtime.bigint();
    const route = routeLabel(req.path);
    res.on('finish', () => {
      deps.metrics.apiRequests.inc({ route, status: String(res.statusCode) });
      deps.metrics.apiRequestSeconds.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    if (route === 'health' || route === 'ready' || route === 'metrics') return next();
    if (inFlight >= maxInFlight) {
      serviceUnavailable(res, `Service busy: ${inFlight} requests in flight; retry after ${retryAfter} s`);
      return;
    }
    inFlight++;
    res.once('close', () => inFlight--);
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

  // The contract is public: no authentication, whatever API_AUTH says.
  const docsPage = renderOpenApiPage(openApiDocument);
  app.get('/openapi.json', (_req, res) => void res.json(openApiDocument));
  app.get('/docs', (_req, res) => void res.set('Content-Security-Policy', DOCS_CSP).type('html').send(docsPage));

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

  // Before the body is read: an unauthenticated client costs no parsing and no queries.
  const authenticate = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (!deps.authenticate) return next();
    const result = await deps.authenticate(req.get('authorization'));
    if (isAuthFailure(result)) {
      res.set('WWW-Authenticate', `Bearer error="invalid_token", error_description="${result.reason}"`);
      send(
        res,
        401,
        errorEnvelope(msgidOf(res), now(), 'UNAUTHORIZED', `Unauthorized: ${result.reason}.`, 'UNAUTHORIZED'),
      );
      return;
    }
    (res.locals as Locals).principal = result;
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
    const principal = (res.locals as Locals).principal;
    // A user syncs only their own enrolments; decided before any lookup, so the answer says
    // nothing about anyone else's.
    if (principal && !principal.admin && userIds.some((u) => u !== principal.userId)) {
      send(
        res,
        403,
        errorEnvelope(
          msgid,
          now(),
          'FORBIDDEN',
          'Forbidden: a token may sync only its own user id unless it carries the admin role.',
          'FORBIDDEN',
        ),
      );
      return;
    }
    const unavailable = (what: string) => () =>
      new SyncError('SYNC_TIMEOUT', `${what} did not answer within ${deps.dependencyTimeoutMs} ms`, {
        retriable: true,
      });
    // Gives up the publish when the deadline passes or the client goes away: a trigger given up
    // on is never published later (see createTriggerPublisher).
    const giveUp = new AbortController();
    const deadline = setTimeout(() => giveUp.abort(), deps.dependencyTimeoutMs);
    const onClose = (): void => {
      if (!res.writableFinished) giveUp.abort();
    };
    res.once('close', onClose);

    try {
      // When the rows were read: from before the read, so their age is never understated.
      const readAt = now().getTime();
      const rows = await withDeadline(
        deps.findEnrolments(courseId, batchId, userIds),
        deps.dependencyTimeoutMs,
        unavailable('Cassandra'),
      );
      const selected = new Map<string, EnrolmentRow>();
      for (const row of rows) if (shouldSync(row, deps.policy)) selected.set(row.userId, row);
      const enrolledUsers = userIds.filter((u) => selected.has(u));
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
        triggerId: deps.newTriggerId?.() ?? randomUUID(),
        courseId,
        batchId,
        userIds: enrolledUsers,
        // With authentication on, the token says who asked; the header is trusted only without it.
        requestedBy: principal?.userId ?? (req.get('x-authenticated-userid')?.trim().slice(0, 256) || 'api'),
        requestedAt: now().getTime(),
        source: 'api',
        includeInactive: deps.policy.includeInactive,
        includeCompleted: deps.policy.includeCompleted,
        // What was just read, so the processor does not read it again (CarriedEnrolments says
        // when it trusts them). Only the rows the policy keeps: the others are not in userIds.
        enrolments:
          enrolledUsers.length <= CARRIED_ENROLMENTS_MAX_USERS
            ? {
                readAt,
                rows: enrolledUsers.map((u) => {
                  const { active, status } = selected.get(u) as EnrolmentRow;
                  return { userId: u, active, status };
                }),
              }
            : null,
      };
      await deps.publishTrigger(trigger, { signal: giveUp.signal });
      const notEnrolled = userIds.filter((u) => !selected.has(u));
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
      // A fenced producer published nothing and is being replaced: the client may simply retry.
      if (isSyncError(err) && (err.retriable || errorKind(err) === 'fenced')) {
        deps.log.warn({ err, msgid }, 'dependency unavailable');
        if (err.code === 'SYNC_TIMEOUT' && giveUp.signal.aborted) {
          serviceUnavailable(res, `Service unavailable: Kafka did not answer within ${deps.dependencyTimeoutMs} ms`);
        } else serviceUnavailable(res, `Service unavailable: ${messageOf(err)}`);
        return;
      }
      throw err;
    } finally {
      clearTimeout(deadline);
      res.off('close', onClose);
    }
  };

  const parseJson = express.json({ limit: deps.bodyLimitBytes, type: 'application/json', strict: false });
  for (const path of SYNC_PATHS) {
    app.patch(path, authenticate, requireJson, parseJson, handleSync);
    app.all(path, (req, res) => {
      res.set('Allow', 'PATCH');
      send(
        res,
        405,
        errorEnvelope(msgidOf(res), now(), 'METHOD_NOT_ALLOWED', `Use PATCH on ${req.path}.`, 'CLIENT_ERROR'),
      );
    });
  }

  // Operators' endpoint: with authentication on, only the admin role may read a trigger's status.
  app.get(`${STATUS_PATH}/:triggerId`, authenticate, requireAdmin(now), async (req, res) => {
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
  // The status page's data: the same rule as one trigger's status (admin only with authentication on).
  app.get(STATUS_PATH, authenticate, requireAdmin(now), async (req, res) => {
    const msgid = msgidOf(res);
    const query = parseStatusListQuery(req.originalUrl.split('?')[1] ?? '');
    if (!query.ok) {
      const { field, message } = query;
      const body = errorEnvelope(msgid, now(), 'INVALID_PARAMETER_VALUE', message, 'CLIENT_ERROR', { field });
      return send(res, 400, { ...body, id: STATUS_LIST_API_ID });
    }
    try {
      const triggers = deps.listStatus
        ? await withDeadline(
            deps.listStatus(query.value),
            deps.dependencyTimeoutMs,
            () =>
              new SyncError('SYNC_TIMEOUT', `Kafka did not answer within ${deps.dependencyTimeoutMs} ms`, {
                retriable: true,
              }),
          )
        : [];
      const result = { response: 'Success', count: triggers.length, limit: query.value.limit, triggers };
      send(res, 200, { ...successEnvelope(msgid, now(), result), id: STATUS_LIST_API_ID });
    } catch (err) {
      deps.log.warn({ err, msgid }, 'status list unavailable');
      const message = `Service unavailable: ${messageOf(err)}`;
      const body = errorEnvelope(msgid, now(), 'SERVICE_UNAVAILABLE', message, 'SERVICE_UNAVAILABLE');
      send(res, 503, { ...body, id: STATUS_LIST_API_ID });
    }
  });
  app.all(STATUS_PATH, (req, res) => {
    res.set('Allow', 'GET');
    send(res, 405, errorEnvelope(msgidOf(res), now(), 'METHOD_NOT_ALLOWED', `Use GET on ${req.path}.`, 'CLIENT_ERROR'));
  });
  // The page holds no data (it asks the list endpoint, with the operator's token), so anyone may load it.
  app.get(STATUS_PAGE_PATH, (_req, res) => {
    res.set(STATUS_PAGE_HEADERS).type('html').send(STATUS_PAGE_HTML);
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

  // Every client error the body parser raises (malformed JSON, a body that does not decompress,
  // a wrong charset, an aborted upload…) is a 4xx envelope; anything else a 500 envelope.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const msgid = msgidOf(res) ?? randomUUID();
    const e = (err ?? {}) as { type?: unknown; status?: unknown; statusCode?: unknown };
    const status = Number(e.status ?? e.statusCode);
    if (res.headersSent) return;
    if (Number.isInteger(status) && status >= 400 && status < 500) {
      const code = (typeof e.type === 'string' && BODY_ERRORS[e.type]) || 'BAD_REQUEST';
      const message =
        code === 'INVALID_JSON'
          ? `Malformed JSON body: ${messageOf(err)}`
          : code === 'PAYLOAD_TOO_LARGE'
            ? `Body is larger than ${deps.bodyLimitBytes} bytes.`
            : `Bad request body: ${messageOf(err)}`;
      send(res, status, errorEnvelope(msgid, now(), code, message, 'CLIENT_ERROR'));
      return;
    }
    deps.log.error({ err, msgid }, 'unexpected error in API');
    send(res, 500, errorEnvelope(msgid, now(), 'INTERNAL_ERROR', 'Internal error', 'SERVER_ERROR'));
  });
  return app;
}

/**
 * For endpoints only operators may use (whole-batch triggers, trigger status): mount after the
 * app's `authenticate` step. With authentication off (no principal) everything passes, as on the
 * single-machine default; with it on, only a token with the admin role does (403 otherwise).
 */
export function requireAdmin(now: () => Date = () => new Date()) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    const { principal, msgid } = res.locals as Locals;
    if (principal === undefined || principal.admin) return next();
    res
      .status(403)
      .json(
        errorEnvelope(
          msgid ?? randomUUID(),
          now(),
          'FORBIDDEN',
          'Forbidden: this endpoint needs the admin role.',
          'FORBIDDEN',
        ),
      );
  };
}

/**
 * What the API's port answers while the service starts: the port is taken first, before the
 * processor joins its group, and the app takes over once everything it needs is open. Until
 * then /health says the process answers, /ready and everything else 503 with Retry-After.
 */
export function startingUp(retryAfterSeconds: number): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const headers = { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8' };
    if (path === '/health') {
      res.writeHead(200, headers).end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (path === '/ready') {
      res.writeHead(503, headers).end(JSON.stringify({ status: 'starting' }));
      return;
    }
    const message = `Service starting; retry after ${retryAfterSeconds} s`;
    const body = errorEnvelope(randomUUID(), new Date(), 'SERVICE_UNAVAILABLE', message, 'SERVICE_UNAVAILABLE');
    res.writeHead(503, { ...headers, 'Retry-After': String(retryAfterSeconds) }).end(JSON.stringify(body));
  };
}

/**
 * What Node's HTTP server does before express sees a request: a request line it cannot parse, a
 * CONNECT. Answered with the envelope too, instead of a bare 400 or a dropped connection.
 */
export function hardenServer(
  server: Server,
  opts: { headersTimeoutMs?: number; requestTimeoutMs?: number } = {},
): void {
  server.headersTimeout = opts.headersTimeoutMs ?? 10000;
  server.requestTimeout = opts.requestTimeoutMs ?? 30000;
  const envelope = (status: number, text: string, err: string): string => {
    const body = JSON.stringify(errorEnvelope(randomUUID(), new Date(), err, text, 'CLIENT_ERROR'));
    return (
      `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`
    );
  };
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const [status, text] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout']
          : [400, 'Bad Request'];
    socket.end(envelope(status, text, status === 400 ? 'BAD_REQUEST' : 'CLIENT_ERROR'));
  });
  server.on('connect', (_req, socket) => {
    socket.end(envelope(405, 'Method Not Allowed', 'METHOD_NOT_ALLOWED'));
  });
}
