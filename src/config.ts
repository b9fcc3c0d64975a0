import { CONFIG_SCHEMA, ConfigValues, isLoopback, readEnvironment } from './config-schema';
import { SyncError } from './errors';
import type { KafkaClientName, KafkaCompression } from './kafka/ports';

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
    /** Record-batch compression of every producer (KAFKA_COMPRESSION). */
    compression: KafkaCompression;
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
    /** Keyspace replication `migrate` uses when it creates the keyspace. */
    replication: string;
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
    /** Carried enrolments (processors/enrolment-sync/trigger.ts) up to this old stand in for a read; 0: never. */
    carriedEnrolmentsMaxAgeMs: number;
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
    /** Trigger transactions in flight at once, one producer each. */
    publishProducers: number;
    /** How long an idle producer waits for more triggers to share its transaction. */
    publishLingerMs: number;
    /** How long the user-list triggers this process makes stay on one partition (0: spread by id). */
    stickyPartitionMs: number;
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

/**
 * Reads every variable through CONFIG_SCHEMA (src/config-schema.ts), then checks how they go
 * together. Every problem, of one variable or of several, ends up in one SYNC_CONFIG error that
 * names each variable, so an operator fixes them all in one go.
 */
export function loadConfig(env: Env): Readonly<Settings> {
  const read = readEnvironment(env);
  const problems = [...read.problems];
  const v = new ConfigValues(read.values);
  const prefix = v.string('SYNC_ENV');
  const settings: Settings = {
    env: prefix,
    logLevel: v.string('LOG_LEVEL'),
    kafka: {
      client: v.string('KAFKA_CLIENT') as KafkaClientName,
      compression: v.string('KAFKA_COMPRESSION') as KafkaCompression,
      brokers: v.list('KAFKA_BROKERS'),
      clientId: v.string('KAFKA_CLIENT_ID'),
      connectionTimeoutMs: v.int('KAFKA_CONNECTION_TIMEOUT_MS'),
      requestTimeoutMs: v.int('KAFKA_REQUEST_TIMEOUT_MS'),
      tls: tlsSettings(v, 'KAFKA', problems),
      sasl: kafkaSasl(v, env, problems),
    },
    registry: registrySettings(v, problems),
    cassandra: {
      contactPoints: v.list('CASSANDRA_CONTACT_POINTS'),
      localDataCenter: v.string('CASSANDRA_LOCAL_DC'),
      keyspace: v.string('CASSANDRA_KEYSPACE'),
      username: v.optional('CASSANDRA_USERNAME'),
      password: v.optional('CASSANDRA_PASSWORD'),
      requestTimeoutMs: v.int('CASSANDRA_REQUEST_TIMEOUT_MS'),
      tls: tlsSettings(v, 'CASSANDRA', problems),
      replication: v.string('CASSANDRA_REPLICATION'),
    },
    topics: {
      trigger: v.string('TRIGGER_TOPIC'),
      output: v.string('SYNC_TOPIC'),
      deadLetter: v.string('DEAD_LETTER_TOPIC'),
      checkpoints: v.string('CHECKPOINT_TOPIC'),
      tasks: v.string('TASK_TOPIC'),
      status: v.string('STATUS_TOPIC'),
      statusRetentionMs: v.int('SYNC_STATUS_RETENTION_MS'),
      partitions: v.int('TOPIC_PARTITIONS'),
      replicationFactor: v.int('TOPIC_REPLICATION_FACTOR'),
    },
    processor: {
      groupId: v.string('CONSUMER_GROUP'),
      guarantee: v.string('SYNC_PROCESSING_GUARANTEE') as ProcessingGuarantee,
      // The broker's group.min.session.timeout.ms (6 s by default) bounds this from below.
      sessionTimeoutMs: v.int('SYNC_SESSION_TIMEOUT_MS'),
      heartbeatIntervalMs: v.int('SYNC_HEARTBEAT_INTERVAL_MS'),
      // Measured (docs/benchmarks.md): each commit stalls output for ~30-40 ms, about 10% at
      // 10,000 events a transaction; at about a second a transaction it is a few percent, and a
      // read_committed reader still waits at most about a second. The count is a ceiling.
      txnMaxRecords: v.int('SYNC_TXN_MAX_RECORDS'),
      txnMaxMs: v.int('SYNC_TXN_MAX_MS'),
      transactionTimeoutMs: v.int('SYNC_TRANSACTION_TIMEOUT_MS'),
      shutdownTimeoutMs: v.int('SYNC_SHUTDOWN_TIMEOUT_MS'),
      // Below the broker's default message.max.bytes (1 MiB), with room for the batch overhead.
      maxDeadLetterBytes: v.int('SYNC_DLQ_MAX_BYTES'),
      healthHost: v.string('PROCESSOR_HOST'),
      healthPort: v.int('PROCESSOR_PORT'),
      maxEventsPerSecond: v.int('SYNC_MAX_EVENTS_PER_SECOND'),
      fanOut: v.bool('SYNC_FAN_OUT'),
      fanOutTasks: v.int('SYNC_FAN_OUT_TASKS'),
      eventFormat: v.string('SYNC_EVENT_FORMAT') as EventFormat,
      includeInactive: v.bool('SYNC_INCLUDE_INACTIVE'),
      includeCompleted: v.bool('SYNC_INCLUDE_COMPLETED'),
      readPlan: v.string('SYNC_READ_PLAN') as ReadPlan,
      pageSize: v.int('SYNC_PAGE_SIZE'),
      // A checkpoint lists the ranges still to read: 4,096 keep it far below Kafka's record limit.
      scanRanges: v.int('SYNC_SCAN_RANGES'),
      scanConcurrency: v.int('SYNC_SCAN_CONCURRENCY'),
      indexProbeRows: v.int('SYNC_INDEX_PROBE_ROWS'),
      indexProbeMs: v.int('SYNC_INDEX_PROBE_MS'),
      // Table rows a scan reads in the time the index yields one batch row (docs/read-plan.md).
      scanRowsPerIndexRow: v.int('SYNC_INDEX_COST_FACTOR'),
      produceBatchSize: v.int('SYNC_PRODUCE_BATCH'),
      produceMaxInFlight: v.int('SYNC_PRODUCE_IN_FLIGHT'),
      keyLookupConcurrency: v.int('SYNC_KEY_LOOKUP_CONCURRENCY'),
      carriedEnrolmentsMaxAgeMs: v.int('SYNC_CARRIED_ENROLMENTS_MAX_AGE_MS'),
      partitionsConcurrently: v.int('SYNC_PARTITIONS_CONCURRENTLY'),
      retry: {
        retries: v.int('SYNC_RETRIES'),
        initialDelayMs: v.int('SYNC_RETRY_INITIAL_MS'),
        maxDelayMs: v.int('SYNC_RETRY_MAX_MS'),
      },
    },
    api: apiSettings(v, env, problems),
  };
  if (settings.cassandra.username !== undefined && settings.cassandra.password === undefined) {
    problems.push('CASSANDRA_PASSWORD must be set when CASSANDRA_USERNAME is');
  }
  if (settings.processor.heartbeatIntervalMs >= settings.processor.sessionTimeoutMs) {
    problems.push('SYNC_HEARTBEAT_INTERVAL_MS must be less than SYNC_SESSION_TIMEOUT_MS');
  }
  if (settings.processor.txnMaxMs >= settings.processor.transactionTimeoutMs) {
    problems.push('SYNC_TXN_MAX_MS must be less than SYNC_TRANSACTION_TIMEOUT_MS');
  }
  if (problems.length > 0) throw configError(problems);
  return deepFreeze(settings);
}

/** One error for every problem; its first line names every variable concerned. */
export function configError(problems: readonly string[]): SyncError {
  // Only declared variables: a message may also mention a family such as API_JWT_*.
  const declared = new Set(CONFIG_SCHEMA.map((v) => v.name));
  const mentioned = problems.flatMap((p) => p.match(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g) ?? []);
  const names = [...new Set(mentioned.filter((n) => declared.has(n)))];
  return new SyncError('SYNC_CONFIG', `invalid configuration (${names.join(', ')}):\n  - ${problems.join('\n  - ')}`, {
    retriable: false,
    field: names.join(','),
  });
}

/** TLS settings under one prefix: <P>_TLS (true/false), <P>_TLS_CA_FILE, _CERT_FILE, _KEY_FILE, _KEY_PASSPHRASE. */
function tlsSettings(v: ConfigValues, prefix: string, problems: string[]): TlsSettings | undefined {
  const tls: TlsSettings = {
    caFile: v.optional(`${prefix}_TLS_CA_FILE`),
    certFile: v.optional(`${prefix}_TLS_CERT_FILE`),
    keyFile: v.optional(`${prefix}_TLS_KEY_FILE`),
    keyPassphrase: v.optional(`${prefix}_TLS_KEY_PASSPHRASE`),
  };
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    problems.push(`${prefix}_TLS_CERT_FILE and ${prefix}_TLS_KEY_FILE go together: set both or neither`);
  }
  const anyFile = tls.caFile !== undefined || tls.certFile !== undefined || tls.keyFile !== undefined;
  const enabled = v.bool(`${prefix}_TLS`);
  if (!enabled && anyFile) problems.push(`${prefix}_TLS is false but ${prefix}_TLS_* files are set`);
  return enabled ? tls : undefined;
}

function kafkaSasl(v: ConfigValues, env: Env, problems: string[]): Settings['kafka']['sasl'] {
  const mechanism = v.optional('KAFKA_SASL_MECHANISM');
  const username = v.optional('KAFKA_SASL_USERNAME');
  const password = v.optional('KAFKA_SASL_PASSWORD');
  if (mechanism === undefined) {
    // Given but not one of the mechanisms: the schema has reported it already.
    if (env.KAFKA_SASL_MECHANISM?.trim()) return undefined;
    if (username !== undefined || password !== undefined) {
      problems.push(`KAFKA_SASL_MECHANISM must be set (${SASL_MECHANISMS.join(', ')}) with KAFKA_SASL_USERNAME`);
    }
    return undefined;
  }
  if (username === undefined || password === undefined) {
    problems.push(`KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must be set for KAFKA_SASL_MECHANISM=${mechanism}`);
    return undefined;
  }
  return { mechanism: mechanism as SaslMechanism, username, password };
}

const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

function registrySettings(v: ConfigValues, problems: string[]): Settings['registry'] {
  const url = v.string('SCHEMA_REGISTRY_URL');
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    problems.push(`SCHEMA_REGISTRY_URL must be an http(s) URL, got '${url}'`);
  }
  if (parsed && parsed.username !== '') {
    problems.push('SCHEMA_REGISTRY_URL must not carry credentials; use SCHEMA_REGISTRY_USERNAME and _PASSWORD');
  }
  const username = v.optional('SCHEMA_REGISTRY_USERNAME');
  const password = v.optional('SCHEMA_REGISTRY_PASSWORD');
  if ((username === undefined) !== (password === undefined)) {
    problems.push('SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD go together: set both or neither');
  }
  const tls = tlsSettings(v, 'SCHEMA_REGISTRY', problems);
  if (tls !== undefined && parsed?.protocol === 'http:') {
    problems.push('SCHEMA_REGISTRY_TLS_* is set but SCHEMA_REGISTRY_URL is http://; use https://');
  }
  return { url, username, password, tls };
}

/**
 * The API. Authentication is off on the single-machine default (the API binds to 127.0.0.1)
 * and must be on anywhere else: an API reachable from other machines without a JWT key
 * configured is a configuration error, unless API_AUTH=off says so explicitly.
 */
function apiSettings(v: ConfigValues, env: Env, problems: string[]): Settings['api'] {
  const host = v.string('API_HOST');
  const jwt: JwtSettings = {
    secret: v.optional('API_JWT_SECRET'),
    publicKeyFile: v.optional('API_JWT_PUBLIC_KEY_FILE'),
    jwksFile: v.optional('API_JWT_JWKS_FILE'),
    issuer: v.string('API_JWT_ISSUER'),
    audience: v.string('API_JWT_AUDIENCE'),
    userClaim: v.string('API_JWT_USER_CLAIM'),
    rolesClaim: v.string('API_JWT_ROLES_CLAIM'),
    adminRole: v.string('API_JWT_ADMIN_ROLE'),
    clockToleranceSeconds: v.int('API_JWT_CLOCK_TOLERANCE_S'),
  };
  const keys = [jwt.secret, jwt.publicKeyFile, jwt.jwksFile].filter((k) => k !== undefined).length;
  const explicit = env.API_AUTH !== undefined && env.API_AUTH.trim() !== '';
  const auth = v.string('API_AUTH') as ApiAuthMode;
  if (auth === 'jwt') {
    if (keys !== 1) {
      problems.push('API_AUTH=jwt needs exactly one of API_JWT_SECRET, API_JWT_PUBLIC_KEY_FILE, API_JWT_JWKS_FILE');
    }
    if (jwt.secret !== undefined && Buffer.byteLength(jwt.secret) < 32) {
      problems.push('API_JWT_SECRET must be at least 32 bytes (HS256)');
    }
    if (jwt.issuer === '') problems.push('API_JWT_ISSUER must be set when API_AUTH=jwt');
    if (jwt.audience === '') problems.push('API_JWT_AUDIENCE must be set when API_AUTH=jwt');
  } else if (!isLoopback(host) && !explicit) {
    problems.push(
      `API_HOST ${host} is reachable from other machines: configure API_JWT_* (authentication), or set API_AUTH=off to run without`,
    );
  }
  return {
    host,
    port: v.int('API_PORT'),
    maxUsersPerRequest: v.int('API_MAX_USERS'),
    bodyLimitBytes: v.int('API_BODY_LIMIT_BYTES'),
    dependencyTimeoutMs: v.int('API_DEPENDENCY_TIMEOUT_MS'),
    maxInFlight: v.int('API_MAX_IN_FLIGHT'),
    publishQueueMax: v.int('API_PUBLISH_QUEUE_MAX'),
    publishProducers: v.int('API_PUBLISH_PRODUCERS'),
    publishLingerMs: v.int('API_PUBLISH_LINGER_MS'),
    stickyPartitionMs: v.int('API_STICKY_PARTITION_MS'),
    retryAfterSeconds: v.int('API_RETRY_AFTER_S'),
    // Behind a load balancer it needs a moment to see readiness turn 503; on one machine it does not.
    drainDelayMs: v.int('API_DRAIN_DELAY_MS'),
    shutdownTimeoutMs: v.int('API_SHUTDOWN_TIMEOUT_MS'),
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
