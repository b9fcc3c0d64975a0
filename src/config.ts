import { existsSync } from 'node:fs';
import { SyncError } from './errors';
import { kafkaClientNames, type KafkaClientName } from './kafka/ports';

/**
 * All settings, resolved once from the environment. Only main.ts and cli.ts call loadConfig;
 * everything else is handed the part it needs. Defaults are the single-machine setup of infra/;
 * production points the same variables at its clusters.
 */
export type EventFormat = 'json' | 'avro';
export type ReadPlan = 'auto' | 'index' | 'scan';
export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';
export type ApiAuthMode = 'off' | 'jwt';

/** TLS for a client connection: the CA to trust (system CAs when unset), and a client certificate. */
export interface TlsSettings {
  caFile: string | undefined;
  certFile: string | undefined;
  keyFile: string | undefined;
  keyPassphrase: string | undefined;
}

/** Bearer JWTs checked against exactly one key: an HS256 secret, an RS256 public key, or a JWKS file. */
export interface JwtSettings {
  secret: string | undefined;
  publicKeyFile: string | undefined;
  jwksFile: string | undefined;
  issuer: string;
  audience: string;
  /** Claim naming the user (whose enrolments the token may sync). */
  userClaim: string;
  /** Claim listing roles: an array or a space-separated string; a dotted path reaches nested claims. */
  rolesClaim: string;
  adminRole: string;
  clockToleranceSeconds: number;
}
/** Like Kafka Streams' processing.guarantee. */
export type ProcessingGuarantee = 'exactly_once' | 'at_least_once';

export interface Settings {
  env: string;
  logLevel: string;
  kafka: {
    /** The library the processor produces with (KAFKA_CLIENT); consumers and admin are kafkajs either way. */
    client: KafkaClientName;
    brokers: string[];
    clientId: string;
    connectionTimeoutMs: number;
    requestTimeoutMs: number;
    tls: TlsSettings | undefined;
    sasl: { mechanism: SaslMechanism; username: string; password: string } | undefined;
  };
  registry: {
    url: string;
    username: string | undefined;
    password: string | undefined;
    tls: TlsSettings | undefined;
  };
  cassandra: {
    contactPoints: string[];
    localDataCenter: string;
    keyspace: string;
    username: string | undefined;
    password: string | undefined;
    requestTimeoutMs: number;
    tls: TlsSettings | undefined;
  };
  topics: {
    trigger: string;
    output: string;
    deadLetter: string;
    /** Compacted: where each input partition's trigger in flight records how far it got. */
    checkpoints: string;
    /** Token-range tasks of big triggers, consumed by the whole group. */
    tasks: string;
    /** Compacted (and deleted after statusRetentionMs): each trigger's status. */
    status: string;
    statusRetentionMs: number;
    partitions: number;
    replicationFactor: number;
  };
  processor: {
    groupId: string;
    guarantee: ProcessingGuarantee;
    sessionTimeoutMs: number;
    heartbeatIntervalMs: number;
    /** A transaction (and checkpoint) closes at this many events, or after txnMaxMs. */
    txnMaxRecords: number;
    txnMaxMs: number;
    transactionTimeoutMs: number;
    shutdownTimeoutMs: number;
    maxDeadLetterBytes: number;
    /** The processor-only process serves /health, /ready and /metrics here. */
    healthHost: string;
    healthPort: number;
    /** Output events per second per processor process; 0 is unlimited. */
    maxEventsPerSecond: number;
    /** Whether a whole-batch scan is split into tasks over the group, and into how many (0: twice the task partitions). */
    fanOut: boolean;
    fanOutTasks: number;
    eventFormat: EventFormat;
    includeInactive: boolean;
    includeCompleted: boolean;
    readPlan: ReadPlan;
    pageSize: number;
    scanRanges: number;
    scanConcurrency: number;
    indexProbeRows: number;
    /** The index probe also stops after this long: an index slowed by fresh writes must not eat the budget. */
    indexProbeMs: number;
    /**
     * How many table rows a token-range scan reads in the time the batch index returns one
     * matching row (measured: docs/read-plan.md). Decides between the two plans for big batches.
     */
    scanRowsPerIndexRow: number;
    produceBatchSize: number;
    produceMaxInFlight: number;
    keyLookupConcurrency: number;
    partitionsConcurrently: number;
    retry: RetrySettings;
  };
  api: {
    host: string;
    port: number;
    maxUsersPerRequest: number;
    bodyLimitBytes: number;
    dependencyTimeoutMs: number;
    /** Requests being handled at once; more are answered 503 with Retry-After. */
    maxInFlight: number;
    /** Triggers waiting for Kafka; more are answered 503 with Retry-After. */
    publishQueueMax: number;
    retryAfterSeconds: number;
    /** On stop: readiness answers 503 this long before the server stops accepting connections. */
    drainDelayMs: number;
    /** On stop: requests in flight get this long to finish before their connections are cut. */
    shutdownTimeoutMs: number;
    auth: ApiAuthMode;
    jwt: JwtSettings | undefined;
  };
}

export interface RetrySettings {
  retries: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

type Env = Record<string, string | undefined>;

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  string(name: string, fallback: string): string {
    const raw = this.env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    return raw.trim();
  }

  optional(name: string): string | undefined {
    const raw = this.env[name];
    return raw === undefined || raw === '' ? undefined : raw;
  }

  list(name: string, fallback: string): string[] {
    const items = this.string(name, fallback)
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    if (items.length === 0) this.problems.push(`${name} must list at least one address`);
    return items;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max}, got '${raw}'`);
      return fallback;
    }
    return value;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const v = raw.trim().toLowerCase();
    if (['true', '1', 'yes'].includes(v)) return true;
    if (['false', '0', 'no'].includes(v)) return false;
    this.problems.push(`${name} must be true or false, got '${raw}'`);
    return fallback;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.string(name, fallback);
    if (!(allowed as readonly string[]).includes(raw)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')}, got '${raw}'`);
      return fallback;
    }
    return raw as T;
  }

  /** A file the process must be able to read at start-up (a CA, a certificate, a key). */
  file(name: string): string | undefined {
    const path = this.optional(name)?.trim();
    if (path !== undefined && !existsSync(path))
      this.problems.push(`${name} names a file that does not exist: '${path}'`);
    return path;
  }

  /** TLS settings under one prefix: <P>_TLS (true/false), <P>_TLS_CA_FILE, _CERT_FILE, _KEY_FILE, _KEY_PASSPHRASE. */
  tls(prefix: string, enabledByDefault = false): TlsSettings | undefined {
    const tls: TlsSettings = {
      caFile: this.file(`${prefix}_TLS_CA_FILE`),
      certFile: this.file(`${prefix}_TLS_CERT_FILE`),
      keyFile: this.file(`${prefix}_TLS_KEY_FILE`),
      keyPassphrase: this.optional(`${prefix}_TLS_KEY_PASSPHRASE`),
    };
    if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
      this.problems.push(`${prefix}_TLS_CERT_FILE and ${prefix}_TLS_KEY_FILE go together: set both or neither`);
    }
    const anyFile = tls.caFile !== undefined || tls.certFile !== undefined || tls.keyFile !== undefined;
    const enabled = this.bool(`${prefix}_TLS`, enabledByDefault || anyFile);
    if (!enabled && anyFile) this.problems.push(`${prefix}_TLS is false but ${prefix}_TLS_* files are set`);
    return enabled ? tls : undefined;
  }

  name(name: string, fallback: string, pattern: RegExp, what: string): string {
    const raw = this.string(name, fallback);
    if (!pattern.test(raw)) this.problems.push(`${name} must be ${what}, got '${raw}'`);
    return raw;
  }
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
const CQL_IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]{0,47}$/;

export function loadConfig(env: Env): Readonly<Settings> {
  const r = new Reader(env);
  const prefix = r.name('SYNC_ENV', 'local', TOPIC_NAME, 'a topic-name prefix (letters, digits, . _ -)');
  const settings: Settings = {
    env: prefix,
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    kafka: {
      client: r.oneOf<KafkaClientName>('KAFKA_CLIENT', 'kafkajs', kafkaClientNames),
      brokers: r.list('KAFKA_BROKERS', '127.0.0.1:9092'),
      clientId: r.string('KAFKA_CLIENT_ID', 'enrolment-sync'),
      connectionTimeoutMs: r.int('KAFKA_CONNECTION_TIMEOUT_MS', 3000, 100, 120000),
      requestTimeoutMs: r.int('KAFKA_REQUEST_TIMEOUT_MS', 30000, 1000, 300000),
      tls: r.tls('KAFKA'),
      sasl: kafkaSasl(r),
    },
    registry: registrySettings(r),
    cassandra: {
      contactPoints: r.list('CASSANDRA_CONTACT_POINTS', '127.0.0.1:9042'),
      localDataCenter: r.string('CASSANDRA_LOCAL_DC', 'datacenter1'),
      keyspace: r.name('CASSANDRA_KEYSPACE', 'sunbird_courses', CQL_IDENTIFIER, 'a CQL identifier'),
      username: r.optional('CASSANDRA_USERNAME'),
      password: r.optional('CASSANDRA_PASSWORD'),
      requestTimeoutMs: r.int('CASSANDRA_REQUEST_TIMEOUT_MS', 12000, 100, 300000),
      tls: r.tls('CASSANDRA'),
    },
    topics: {
      trigger: r.name('TRIGGER_TOPIC', `${prefix}.enrolment.sync.trigger`, TOPIC_NAME, 'a Kafka topic name'),
      output: r.name('SYNC_TOPIC', `${prefix}.batch.enrolment.sync.request`, TOPIC_NAME, 'a Kafka topic name'),
      deadLetter: r.name('DEAD_LETTER_TOPIC', `${prefix}.enrolment.sync.trigger.dlq`, TOPIC_NAME, 'a Kafka topic name'),
      checkpoints: r.name('CHECKPOINT_TOPIC', `${prefix}.enrolment.sync.checkpoints`, TOPIC_NAME, 'a Kafka topic name'),
      tasks: r.name('TASK_TOPIC', `${prefix}.enrolment.sync.tasks`, TOPIC_NAME, 'a Kafka topic name'),
      status: r.name('STATUS_TOPIC', `${prefix}.enrolment.sync.status`, TOPIC_NAME, 'a Kafka topic name'),
      statusRetentionMs: r.int('SYNC_STATUS_RETENTION_MS', 7 * 86400000, 60000, 365 * 86400000),
      partitions: r.int('TOPIC_PARTITIONS', 4, 1, 10000),
      replicationFactor: r.int('TOPIC_REPLICATION_FACTOR', 1, 1, 32),
    },
    processor: {
      groupId: r.string('CONSUMER_GROUP', `${prefix}.enrolment-sync`),
      guarantee: r.oneOf<ProcessingGuarantee>('SYNC_PROCESSING_GUARANTEE', 'exactly_once', [
        'exactly_once',
        'at_least_once',
      ]),
      // The broker's group.min.session.timeout.ms (6 s by default) bounds this from below.
      sessionTimeoutMs: r.int('SYNC_SESSION_TIMEOUT_MS', 30000, 1000, 3600000),
      heartbeatIntervalMs: r.int('SYNC_HEARTBEAT_INTERVAL_MS', 3000, 100, 600000),
      // Measured (docs/benchmarks.md): each commit stalls output for ~30-40 ms, about 10% at
      // 10,000 events a transaction; at about a second a transaction it is a few percent, and a
      // read_committed reader still waits at most about a second. The count is a ceiling.
      txnMaxRecords: r.int('SYNC_TXN_MAX_RECORDS', 50000, 1, 10000000),
      txnMaxMs: r.int('SYNC_TXN_MAX_MS', 1000, 10, 600000),
      transactionTimeoutMs: r.int('SYNC_TRANSACTION_TIMEOUT_MS', 60000, 1000, 900000),
      shutdownTimeoutMs: r.int('SYNC_SHUTDOWN_TIMEOUT_MS', 10000, 100, 600000),
      // Below the broker's default message.max.bytes (1 MiB), with room for the batch overhead.
      maxDeadLetterBytes: r.int('SYNC_DLQ_MAX_BYTES', 900000, 4096, 100 * 1024 * 1024),
      healthHost: r.string('PROCESSOR_HOST', '127.0.0.1'),
      healthPort: r.int('PROCESSOR_PORT', 9001, 0, 65535),
      maxEventsPerSecond: r.int('SYNC_MAX_EVENTS_PER_SECOND', 0, 0, 100000000),
      fanOut: r.bool('SYNC_FAN_OUT', true),
      fanOutTasks: r.int('SYNC_FAN_OUT_TASKS', 0, 0, 10000),
      eventFormat: r.oneOf<EventFormat>('SYNC_EVENT_FORMAT', 'json', ['json', 'avro']),
      includeInactive: r.bool('SYNC_INCLUDE_INACTIVE', false),
      includeCompleted: r.bool('SYNC_INCLUDE_COMPLETED', true),
      readPlan: r.oneOf<ReadPlan>('SYNC_READ_PLAN', 'auto', ['auto', 'index', 'scan']),
      pageSize: r.int('SYNC_PAGE_SIZE', 5000, 10, 100000),
      // A checkpoint lists the ranges still to read: 4,096 keep it far below Kafka's record limit.
      scanRanges: r.int('SYNC_SCAN_RANGES', 64, 1, 4096),
      scanConcurrency: r.int('SYNC_SCAN_CONCURRENCY', 4, 1, 256),
      indexProbeRows: r.int('SYNC_INDEX_PROBE_ROWS', 5000, 0, 10000000),
      indexProbeMs: r.int('SYNC_INDEX_PROBE_MS', 1000, 0, 600000),
      // Table rows a scan reads in the time the index yields one batch row (docs/read-plan.md).
      scanRowsPerIndexRow: r.int('SYNC_INDEX_COST_FACTOR', 8, 1, 100000000),
      produceBatchSize: r.int('SYNC_PRODUCE_BATCH', 1000, 1, 100000),
      produceMaxInFlight: r.int('SYNC_PRODUCE_IN_FLIGHT', 4, 1, 5),
      keyLookupConcurrency: r.int('SYNC_KEY_LOOKUP_CONCURRENCY', 64, 1, 1024),
      partitionsConcurrently: r.int('SYNC_PARTITIONS_CONCURRENTLY', 4, 1, 1000),
      retry: {
        retries: r.int('SYNC_RETRIES', 5, 0, 1000),
        initialDelayMs: r.int('SYNC_RETRY_INITIAL_MS', 300, 1, 600000),
        maxDelayMs: r.int('SYNC_RETRY_MAX_MS', 10000, 1, 3600000),
      },
    },
    api: apiSettings(r, env),
  };
  if (settings.cassandra.username !== undefined && settings.cassandra.password === undefined) {
    r.problems.push('CASSANDRA_PASSWORD must be set when CASSANDRA_USERNAME is');
  }
  if (settings.processor.heartbeatIntervalMs >= settings.processor.sessionTimeoutMs) {
    r.problems.push('SYNC_HEARTBEAT_INTERVAL_MS must be less than SYNC_SESSION_TIMEOUT_MS');
  }
  if (settings.processor.txnMaxMs >= settings.processor.transactionTimeoutMs) {
    r.problems.push('SYNC_TXN_MAX_MS must be less than SYNC_TRANSACTION_TIMEOUT_MS');
  }
  if (r.problems.length > 0) {
    throw new SyncError('SYNC_CONFIG', `invalid configuration:\n  - ${r.problems.join('\n  - ')}`, {
      retriable: false,
    });
  }
  return deepFreeze(settings);
}

const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

function kafkaSasl(r: Reader): Settings['kafka']['sasl'] {
  const raw = r.optional('KAFKA_SASL_MECHANISM')?.trim().toLowerCase();
  const username = r.optional('KAFKA_SASL_USERNAME');
  const password = r.optional('KAFKA_SASL_PASSWORD');
  if (raw === undefined) {
    if (username !== undefined || password !== undefined) {
      r.problems.push(`KAFKA_SASL_MECHANISM must be set (${SASL_MECHANISMS.join(', ')}) with KAFKA_SASL_USERNAME`);
    }
    return undefined;
  }
  if (!(SASL_MECHANISMS as readonly string[]).includes(raw)) {
    r.problems.push(`KAFKA_SASL_MECHANISM must be one of ${SASL_MECHANISMS.join(', ')}, got '${raw}'`);
    return undefined;
  }
  if (username === undefined || password === undefined) {
    r.problems.push(`KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must be set for KAFKA_SASL_MECHANISM=${raw}`);
    return undefined;
  }
  return { mechanism: raw as SaslMechanism, username, password };
}

function registrySettings(r: Reader): Settings['registry'] {
  const url = r.string('SCHEMA_REGISTRY_URL', 'http://127.0.0.1:8081/apis/ccompat/v7');
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    r.problems.push(`SCHEMA_REGISTRY_URL must be an http(s) URL, got '${url}'`);
  }
  if (parsed && parsed.username !== '') {
    r.problems.push('SCHEMA_REGISTRY_URL must not carry credentials; use SCHEMA_REGISTRY_USERNAME and _PASSWORD');
  }
  const username = r.optional('SCHEMA_REGISTRY_USERNAME');
  const password = r.optional('SCHEMA_REGISTRY_PASSWORD');
  if ((username === undefined) !== (password === undefined)) {
    r.problems.push('SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD go together: set both or neither');
  }
  const tls = r.tls('SCHEMA_REGISTRY', parsed?.protocol === 'https:');
  if (tls !== undefined && parsed?.protocol === 'http:') {
    r.problems.push('SCHEMA_REGISTRY_TLS_* is set but SCHEMA_REGISTRY_URL is http://; use https://');
  }
  return { url, username, password, tls };
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * The API. Authentication is off on the single-machine default (the API binds to 127.0.0.1)
 * and must be on anywhere else: an API reachable from other machines without a JWT key
 * configured is a configuration error, unless API_AUTH=off says so explicitly.
 */
function apiSettings(r: Reader, env: Env): Settings['api'] {
  const host = r.string('API_HOST', '127.0.0.1');
  const loopback = LOOPBACK_HOSTS.has(host);
  const jwt: JwtSettings = {
    secret: r.optional('API_JWT_SECRET'),
    publicKeyFile: r.file('API_JWT_PUBLIC_KEY_FILE'),
    jwksFile: r.file('API_JWT_JWKS_FILE'),
    issuer: r.string('API_JWT_ISSUER', ''),
    audience: r.string('API_JWT_AUDIENCE', ''),
    userClaim: r.string('API_JWT_USER_CLAIM', 'sub'),
    rolesClaim: r.string('API_JWT_ROLES_CLAIM', 'roles'),
    adminRole: r.string('API_JWT_ADMIN_ROLE', 'admin'),
    clockToleranceSeconds: r.int('API_JWT_CLOCK_TOLERANCE_S', 30, 0, 600),
  };
  const keys = [jwt.secret, jwt.publicKeyFile, jwt.jwksFile].filter((k) => k !== undefined).length;
  const explicit = env.API_AUTH !== undefined && env.API_AUTH.trim() !== '';
  const auth = r.oneOf<ApiAuthMode>('API_AUTH', keys > 0 ? 'jwt' : 'off', ['off', 'jwt']);
  if (auth === 'jwt') {
    if (keys !== 1) {
      r.problems.push('API_AUTH=jwt needs exactly one of API_JWT_SECRET, API_JWT_PUBLIC_KEY_FILE, API_JWT_JWKS_FILE');
    }
    if (jwt.secret !== undefined && Buffer.byteLength(jwt.secret) < 32) {
      r.problems.push('API_JWT_SECRET must be at least 32 bytes (HS256)');
    }
    if (jwt.issuer === '') r.problems.push('API_JWT_ISSUER must be set when API_AUTH=jwt');
    if (jwt.audience === '') r.problems.push('API_JWT_AUDIENCE must be set when API_AUTH=jwt');
  } else if (!loopback && !explicit) {
    r.problems.push(
      `API_HOST ${host} is reachable from other machines: configure API_JWT_* (authentication), or set API_AUTH=off to run without`,
    );
  }
  return {
    host,
    port: r.int('API_PORT', 9000, 0, 65535),
    maxUsersPerRequest: r.int('API_MAX_USERS', 1000, 1, 100000),
    bodyLimitBytes: r.int('API_BODY_LIMIT_BYTES', 262144, 1024, 64 * 1024 * 1024),
    dependencyTimeoutMs: r.int('API_DEPENDENCY_TIMEOUT_MS', 5000, 100, 120000),
    maxInFlight: r.int('API_MAX_IN_FLIGHT', 256, 1, 100000),
    publishQueueMax: r.int('API_PUBLISH_QUEUE_MAX', 2000, 1, 1000000),
    retryAfterSeconds: r.int('API_RETRY_AFTER_S', 1, 1, 3600),
    // Behind a load balancer it needs a moment to see readiness turn 503; on one machine it does not.
    drainDelayMs: r.int('API_DRAIN_DELAY_MS', loopback ? 0 : 5000, 0, 300000),
    shutdownTimeoutMs: r.int('API_SHUTDOWN_TIMEOUT_MS', 10000, 0, 300000),
    auth,
    jwt: auth === 'jwt' ? jwt : undefined,
  };
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
