/**
 * The API's contract: an OpenAPI 3.1 document, served at GET /openapi.json (and rendered at
 * /docs). Every response the API tests receive is validated against it (test/helpers/openapi.ts),
 * so a route, status or body that is not described here fails a test.
 *
 * Adding an endpoint: describe it in `paths` (or in one of the extension points below) with every
 * status it answers, its schemas in `components.schemas`; a path that answers one method and 405
 * to the others spreads `methodNotAllowed('GET')`. Tests of it get the check for free when they
 * start the service with startService (or call trackApi(url) for a service started otherwise).
 */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type OpenApiDocument = { openapi: '3.1.0'; paths: Record<string, Record<string, Json>> } & Record<string, Json>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json): Json => ({ 'application/json': { schema } });
const response = (description: string, schema: Json, headers?: Record<string, Json>): Json => ({
  description,
  content: json(schema),
  ...(headers ? { headers } : {}),
});
const header = (description: string, schema: Json = { type: 'string' }): Json => ({ description, schema });

const retryAfter = { 'Retry-After': header('seconds to wait before retrying', { type: 'string', pattern: '^\\d+$' }) };
const allow = (method: string) => ({ Allow: header(`the one method this path answers: ${method}`) });

const errorResponse = (description: string, extra?: Record<string, Json>) =>
  response(description, ref('ErrorEnvelope'), extra);

/** 401, the same on every path that takes a bearer token. */
const unauthorized = errorResponse('authentication on and no valid bearer token', {
  'WWW-Authenticate': header('Bearer error="invalid_token", error_description="…"'),
});

/**
 * A success answer's schema: the envelope narrowed to its `id`, responseCode OK, and a `result`
 * of exactly `response: 'Success'` and `fields`, all required. `narrow` narrows more of the
 * envelope (params, say).
 */
const successEnvelope = (id: string, fields: Record<string, Json>, narrow: Record<string, Json> = {}): Json => ({
  allOf: [
    ref('Envelope'),
    {
      properties: {
        id: { const: id },
        ...narrow,
        responseCode: { const: 'OK' },
        result: {
          type: 'object',
          required: ['response', ...Object.keys(fields)],
          properties: { response: { const: 'Success' }, ...fields },
          additionalProperties: false,
        },
      },
    },
  ],
});

/**
 * What a path answers to every method not listed on it (x-other-methods, a path-item extension):
 * 405 with Allow. OpenAPI names eight methods; HTTP has more (PROPFIND, PURGE, …), all answered alike.
 */
function methodNotAllowed(allowed: string): Record<string, Json> {
  return {
    'x-other-methods': {
      summary: `any other method: 405, use ${allowed}`,
      responses: { '405': errorResponse(`use ${allowed}`, allow(allowed)) },
    },
  };
}

const syncOperation = (operationId: string, summary: string): Json => ({
  operationId,
  summary,
  description:
    'Checks the body (courseId or collectionId, then batchId, then userId), looks the users up in ' +
    'sunbird_courses.user_enrolments and publishes one trigger for the enrolled ones (acks = all, in a ' +
    'Kafka transaction). A user not enrolled (or inactive) is listed in result.notEnrolled.',
  security: [{}, { bearerAuth: [] }],
  parameters: [
    {
      name: 'X-msgId',
      in: 'header',
      required: false,
      description: 'echoed as params.msgid (printable ASCII, at most 256 characters); a UUID when absent',
      schema: { type: 'string' },
    },
  ],
  requestBody: {
    required: true,
    content: {
      'application/json': { schema: ref('SyncRequest') },
    },
  },
  responses: {
    '200': response('a trigger for the enrolled users was acknowledged by Kafka', ref('SyncSuccessEnvelope')),
    '400': errorResponse(
      'a field is missing or wrong (params.errmsg and result.field name it), malformed JSON, too many users, ' +
        'a body that does not decompress, or none of the users enrolled (result.response: the design message)',
    ),
    '401': unauthorized,
    '403': errorResponse("a token for another user's id without the admin role"),
    '413': errorResponse('the body is larger than API_BODY_LIMIT_BYTES'),
    '415': errorResponse('Content-Type is not application/json, or an unsupported charset or Content-Encoding'),
    '503': errorResponse(
      'Cassandra or Kafka did not answer within API_DEPENDENCY_TIMEOUT_MS, or too many requests in flight',
      retryAfter,
    ),
  },
});

const probe = (operationId: string, summary: string, schema: Json, extra: Record<string, Json> = {}): Json => ({
  operationId,
  summary,
  description:
    'Served by the API, and by the `processor` command alone on PROCESSOR_PORT (which answers any ' +
    'other path with 404 {"status":"not found"} and other methods with 405).',
  responses: { '200': response(summary, schema), ...extra },
});

/** The status page (issue 12 item 3) and the JSON list of recent triggers it polls. */
const statusPagePaths: Record<string, Record<string, Json>> = {
  '/v1/content/state/sync': {
    get: {
      operationId: 'triggerList',
      summary: 'triggers running and recently finished: unfinished first, then finished, each newest first',
      description:
        'With authentication on, only a token with the admin role (API_JWT_ADMIN_ROLE). Any other query parameter is a 400.',
      security: [{}, { bearerAuth: [] }],
      parameters: [
        {
          name: 'state',
          in: 'query',
          required: false,
          description:
            'comma-separated states (accepted, running, done, failed, joined) or the groups active, finished; may repeat',
          schema: { type: 'string' },
        },
        {
          name: 'limit',
          in: 'query',
          required: false,
          description: 'at most this many triggers',
          schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
        },
      ],
      responses: {
        '200': response('the triggers', ref('StatusListEnvelope')),
        '400': errorResponse('a bad state, limit or unknown parameter (result.field names it)'),
        '401': unauthorized,
        '403': errorResponse('a token without the admin role'),
        '503': errorResponse('Kafka did not answer within API_DEPENDENCY_TIMEOUT_MS, or busy', retryAfter),
      },
    },
    ...methodNotAllowed('GET'),
  },
  '/ui': {
    get: {
      operationId: 'statusPage',
      summary: 'the live status page (one self-contained page; it polls GET /v1/content/state/sync)',
      responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
    },
  },
};

/**
 * Extension point: a batched publish path (several sync requests in one call), with its request
 * and response schemas under components.schemas.
 */
const batchPublishPaths: Record<string, Record<string, Json>> = {};

export const openApiDocument: OpenApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'enrolment-sync',
    version: '1.0.0',
    description:
      "Repairs learners' course progress: one BE_JOB_REQUEST user-enrolment-sync event per enrolled user. " +
      "Responses use Sunbird's envelope. Every answer carries X-Content-Type-Options: nosniff, " +
      "X-Frame-Options: DENY, Content-Security-Policy: default-src 'none', Cache-Control: no-store. " +
      'A path not listed answers 404 (see x-unmatched-responses); a request the HTTP server cannot parse ' +
      'answers 400, 408 or 431 in the same envelope. Authentication (bearerAuth) applies when API_AUTH=jwt.',
  },
  servers: [{ url: 'http://127.0.0.1:9000', description: 'the single-machine default (API_HOST, API_PORT)' }],
  paths: {
    '/v1/content/state/update': {
      patch: syncOperation('syncUsers', 'sync one user or a list of users of a course batch'),
      ...methodNotAllowed('PATCH'),
    },
    '/v1/user/content/state': {
      patch: syncOperation('syncUsersAlias', 'the same as PATCH /v1/content/state/update'),
      ...methodNotAllowed('PATCH'),
    },
    '/v1/content/state/sync/{triggerId}': {
      parameters: [{ name: 'triggerId', in: 'path', required: true, schema: { type: 'string' } }],
      get: {
        operationId: 'triggerStatus',
        summary: "a trigger's status, read back from the status topic by any instance",
        description: 'With authentication on, only a token with the admin role (API_JWT_ADMIN_ROLE).',
        security: [{}, { bearerAuth: [] }],
        responses: {
          '200': response("the trigger's status", ref('StatusEnvelope')),
          '401': unauthorized,
          '403': errorResponse('a token without the admin role'),
          '404': errorResponse('no trigger with this id'),
          '503': errorResponse('Kafka did not answer within API_DEPENDENCY_TIMEOUT_MS, or busy', retryAfter),
        },
      },
      ...methodNotAllowed('GET'),
    },
    '/health': {
      get: probe('health', 'the process answers', ref('Health')),
    },
    '/ready': {
      get: probe('ready', 'ready to take work', ref('Ready'), {
        '503': response('starting, stopping (SIGTERM), or the processor is not consuming', ref('Ready')),
      }),
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        summary: 'Prometheus metrics (text exposition format)',
        responses: {
          '200': { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
        },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'this document',
        responses: { '200': response('the OpenAPI 3.1 document', { type: 'object', required: ['openapi'] }) },
      },
    },
    '/docs': {
      get: {
        operationId: 'docs',
        summary: 'this document rendered as a page (no scripts)',
        responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
      },
    },
    ...statusPagePaths,
    ...batchPublishPaths,
  },
  // Answered to any path not listed above, whatever the method, and to a method not listed on
  // /health, /ready, /metrics, /openapi.json or /docs.
  'x-unmatched-responses': {
    '404': errorResponse('no such endpoint'),
  },
  // Answered by the HTTP server before any routing (hardenServer), to requests it cannot parse.
  'x-server-responses': {
    '400': errorResponse('a request line or framing that does not parse'),
    '405': errorResponse('CONNECT'),
    '408': errorResponse('the request did not arrive in time'),
    '431': errorResponse('headers too large'),
  },
  components: {
    securitySchemes: {
      bearerAuth: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description:
          'When API_AUTH=jwt: HS256, RS256 or a JWKS (API_JWT_*), checked with issuer, audience and expiry. ' +
          'The user claim must equal every userId unless the roles claim holds the admin role.',
      },
    },
    schemas: {
      Id: { type: 'string', minLength: 1, maxLength: 1024 },
      SyncRequest: {
        type: 'object',
        required: ['request'],
        properties: {
          request: {
            type: 'object',
            required: ['batchId', 'userId'],
            properties: {
              courseId: ref('Id'),
              collectionId: { ...(ref('Id') as object), description: 'an alias of courseId' },
              batchId: ref('Id'),
              userId: {
                oneOf: [ref('Id'), { type: 'array', items: ref('Id'), minItems: 1 }],
                description: 'one id or a list; at most API_MAX_USERS distinct ids',
              },
            },
            anyOf: [{ required: ['courseId'] }, { required: ['collectionId'] }],
          },
        },
      },
      Timestamp: {
        type: 'string',
        description: 'UTC, milliseconds after a colon: 2021-03-04 05:58:04:382+0000',
        pattern: '^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}:\\d{3}\\+0000$',
      },
      Envelope: {
        type: 'object',
        description: "Sunbird's response envelope",
        required: ['id', 'ver', 'ts', 'params', 'responseCode', 'result'],
        properties: {
          id: { enum: ['api.content.state.update', 'api.content.state.sync.read', 'api.content.state.sync.list'] },
          ver: { const: 'v1' },
          ts: ref('Timestamp'),
          params: {
            type: 'object',
            required: ['resmsgid', 'msgid', 'err', 'status', 'errmsg'],
            properties: {
              resmsgid: { type: ['string', 'null'] },
              msgid: { type: 'string' },
              err: { type: ['string', 'null'] },
              status: { enum: ['success', 'failed'] },
              errmsg: { type: ['string', 'null'] },
            },
            additionalProperties: false,
          },
          responseCode: { type: 'string' },
          result: { type: 'object' },
        },
        additionalProperties: false,
      },
      SyncSuccessEnvelope: successEnvelope(
        'api.content.state.update',
        {
          triggerId: { type: 'string', format: 'uuid' },
          users: { type: 'integer', minimum: 1 },
          notEnrolled: { type: 'array', items: { type: 'string' } },
        },
        { params: { properties: { status: { const: 'success' }, err: { type: 'null' } } } },
      ),
      ErrorEnvelope: {
        allOf: [
          ref('Envelope'),
          {
            properties: {
              params: {
                required: ['err', 'errmsg'],
                properties: { status: { const: 'failed' }, err: { type: 'string' }, errmsg: { type: 'string' } },
              },
              responseCode: {
                enum: ['CLIENT_ERROR', 'UNAUTHORIZED', 'FORBIDDEN', 'RESOURCE_NOT_FOUND', 'SERVICE_UNAVAILABLE'],
              },
              result: {
                type: 'object',
                properties: {
                  field: { type: 'string', description: 'the field that is missing or wrong' },
                  response: { type: 'string', description: 'the "No users enrolled" message' },
                  triggerId: { type: 'string' },
                },
                additionalProperties: false,
              },
            },
          },
        ],
      },
      StatusEnvelope: successEnvelope('api.content.state.sync.read', { status: ref('TriggerStatus') }),
      StatusListEnvelope: successEnvelope('api.content.state.sync.list', {
        count: { type: 'integer', minimum: 0 },
        limit: { type: 'integer', minimum: 1 },
        triggers: { type: 'array', items: ref('TriggerStatus') },
      }),
      TriggerStatus: {
        type: 'object',
        required: ['triggerId', 'state', 'eventsProduced', 'rowsRead', 'tasks'],
        properties: {
          triggerId: { type: 'string' },
          state: { enum: ['accepted', 'running', 'done', 'failed', 'joined'] },
          courseId: { type: 'string' },
          batchId: { type: 'string' },
          users: { type: ['integer', 'null'], description: 'users listed; null for a whole batch' },
          requestedBy: { type: 'string' },
          requestedAt: { type: 'integer', description: 'epoch ms' },
          source: { type: 'string' },
          eventsProduced: { type: 'integer', minimum: 0 },
          rowsRead: { type: 'integer', minimum: 0 },
          tasks: {
            type: 'object',
            required: ['done', 'total'],
            properties: { done: { type: 'integer', minimum: 0 }, total: { type: 'integer', minimum: 0 } },
            additionalProperties: false,
          },
          progress: { type: 'number', minimum: 0, maximum: 1 },
          startedAt: { type: 'integer' },
          updatedAt: { type: 'integer' },
          finishedAt: { type: 'integer' },
          eventsPerSecond: { type: 'number', minimum: 0 },
          etaSeconds: { type: 'number', minimum: 0 },
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' } },
          },
          joinedTo: { type: 'string', description: 'the trigger this one joined (state joined)' },
          deadLetters: {
            type: 'integer',
            minimum: 0,
            description: 'inputs of this trigger sent to the dead-letter topic',
          },
        },
        additionalProperties: false,
      },
      Health: {
        type: 'object',
        required: ['status'],
        properties: { status: { const: 'ok' } },
        additionalProperties: false,
      },
      Ready: {
        type: 'object',
        required: ['status'],
        properties: {
          status: { enum: ['ready', 'starting', 'stopping', 'not ready'] },
          reason: { type: 'string', description: 'why not ready (processor: a fatal error)' },
        },
        additionalProperties: false,
      },
    },
  },
};
