import { existsSync } from 'node:fs';
import { kafkaClientNames, kafkaCompressions } from './kafka/ports';

/**
 * Every environment variable the product reads, declared once: its type, default, range or
 * allowed values, whether it is a secret, and what it means. loadConfig (src/config.ts) reads
 * the environment through this list and nothing else; `enrolment-sync config` prints it with
 * secrets redacted; the README's configuration table is generated from it (src/config-table.ts).
 */
export type VariableKind = 'string' | 'int' | 'bool' | 'enum' | 'list' | 'file';
export type Value = string | number | boolean | string[] | undefined;

/** Values read so far, in schema order: what a derived default may depend on. */
export type Resolved = ReadonlyMap<string, Value>;

export interface VariableSpec {
  name: string;
  kind: VariableKind;
  /** When unset (or blank). A function derives it from variables declared before this one. */
  default?: Value | ((read: Resolved) => Value);
  /** How the README shows a derived default. */
  defaultText?: string;
  description: string;
  /** Never printed: `config` says (set) or (unset). */
  secret?: boolean;
  min?: number;
  max?: number;
  allowed?: readonly string[];
  /** A value that must match, and how to say what it must be. */
  pattern?: RegExp;
  patternText?: string;
  /** Compared case-insensitively (the value is lowercased). */
  lowercase?: boolean;
  /** Kept exactly as given (no trimming): passwords and secrets may contain spaces. */
  raw?: boolean;
  /** A list of network addresses: `host:port`, the port required or, left out, the client's default. */
  port?: 'required' | 'optional';
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
const CQL_IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]{0,47}$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);
export const isLoopback = (host: string): boolean => LOOPBACK_HOSTS.has(host);

const str = (name: string, def: VariableSpec['default'], description: string, extra: Partial<VariableSpec> = {}) =>
  ({ name, kind: 'string', default: def, description, ...extra }) satisfies VariableSpec;
const int = (name: string, def: number, min: number, max: number, description: string, extra = {}) =>
  ({ name, kind: 'int', default: def, min, max, description, ...extra }) satisfies VariableSpec;
const bool = (name: string, def: VariableSpec['default'], description: string, extra = {}) =>
  ({ name, kind: 'bool', default: def, description, ...extra }) satisfies VariableSpec;
const oneOf = (
  name: string,
  def: VariableSpec['default'],
  allowed: readonly string[],
  description: string,
  extra = {},
) => ({ name, kind: 'enum', default: def, allowed, description, ...extra }) satisfies VariableSpec;
const file = (name: string, description: string) => ({ name, kind: 'file', description }) satisfies VariableSpec;
const secret = (name: string, description: string) =>
  ({ name, kind: 'string', description, secret: true, raw: true }) satisfies VariableSpec;
const topic = (name: string, suffix: string, description: string) =>
  str(name, (r) => `${String(r.get('SYNC_ENV'))}.${suffix}`, description, {
    defaultText: `{env}.${suffix}`,
    pattern: TOPIC_NAME,
    patternText: 'a Kafka topic name',
  });

/** <P>_TLS_CA_FILE, _CERT_FILE, _KEY_FILE, _KEY_PASSPHRASE and <P>_TLS, for one client connection. */
function tls(prefix: string, who: string, enabledByDefault?: (r: Resolved) => boolean, defaultText?: string) {
  const anyFile = (r: Resolved) => ['CA', 'CERT', 'KEY'].some((f) => r.get(`${prefix}_TLS_${f}_FILE`) !== undefined);
  return [
    file(`${prefix}_TLS_CA_FILE`, `CA certificate(s) (PEM) to trust for ${who}; unset: the system CAs`),
    file(`${prefix}_TLS_CERT_FILE`, `client certificate (PEM) for mutual TLS with ${who}; with _TLS_KEY_FILE`),
    file(`${prefix}_TLS_KEY_FILE`, `client private key (PEM) for mutual TLS with ${who}`),
    secret(`${prefix}_TLS_KEY_PASSPHRASE`, 'passphrase of the client private key'),
    bool(`${prefix}_TLS`, (r: Resolved) => (enabledByDefault?.(r) ?? false) || anyFile(r), `TLS to ${who}`, {
      defaultText: defaultText ?? 'false; true when a _TLS_*_FILE is set',
    }),
  ];
}

export const CONFIG_SCHEMA: readonly VariableSpec[] = [
  str('SYNC_ENV', 'local', 'environment name: the prefix of every topic name', {
    pattern: TOPIC_NAME,
    patternText: 'a topic-name prefix (letters, digits, . _ -)',
  }),
  oneOf(
    'LOG_LEVEL',
    'info',
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    'pino log level; logs are JSON lines on stderr',
  ),

  {
    name: 'KAFKA_BROKERS',
    kind: 'list',
    default: '127.0.0.1:9092',
    // kafkajs takes no default port: 'kafka-1' alone fails at connect, naming no variable.
    port: 'required',
    description: 'Kafka bootstrap brokers, host:port, comma-separated',
  },
  str('KAFKA_CLIENT_ID', 'enrolment-sync', 'Kafka client id (broker logs and quotas)'),
  oneOf(
    'KAFKA_CLIENT',
    'confluent',
    kafkaClientNames,
    'producer library, processor and API (see Kafka client in the README)',
  ),
  oneOf(
    'KAFKA_COMPRESSION',
    'lz4',
    kafkaCompressions,
    'compression of the record batches the producers write (see Kafka client in the README)',
    { lowercase: true },
  ),
  int('KAFKA_CONNECTION_TIMEOUT_MS', 3000, 100, 120000, 'Kafka: time to open a connection to a broker, ms'),
  int('KAFKA_REQUEST_TIMEOUT_MS', 30000, 1000, 300000, 'Kafka: time a broker has to answer a request, ms'),
  ...tls('KAFKA', 'Kafka'),
  oneOf('KAFKA_SASL_MECHANISM', undefined, ['plain', 'scram-sha-256', 'scram-sha-512'], 'Kafka SASL mechanism', {
    lowercase: true,
  }),
  str('KAFKA_SASL_USERNAME', undefined, 'Kafka SASL user name (with KAFKA_SASL_MECHANISM)', { raw: true }),
  secret('KAFKA_SASL_PASSWORD', 'Kafka SASL password'),

  str(
    'SCHEMA_REGISTRY_URL',
    'http://127.0.0.1:8081/apis/ccompat/v7',
    'Confluent-compatible schema registry; https:// turns TLS on',
  ),
  str('SCHEMA_REGISTRY_USERNAME', undefined, 'registry basic-auth user name (with _PASSWORD)', { raw: true }),
  secret('SCHEMA_REGISTRY_PASSWORD', 'registry basic-auth password'),
  ...tls(
    'SCHEMA_REGISTRY',
    'the schema registry',
    (r) => String(r.get('SCHEMA_REGISTRY_URL')).startsWith('https:'),
    'true for an https:// URL or when a _TLS_*_FILE is set',
  ),

  {
    name: 'CASSANDRA_CONTACT_POINTS',
    kind: 'list',
    default: '127.0.0.1:9042',
    port: 'optional',
    description: 'Cassandra contact points, host or host:port (9042), comma-separated',
  },
  str('CASSANDRA_LOCAL_DC', 'datacenter1', 'Cassandra local data centre (load balancing)'),
  str('CASSANDRA_KEYSPACE', 'sunbird_courses', 'keyspace of user_enrolments and course_batch', {
    pattern: CQL_IDENTIFIER,
    patternText: 'a CQL identifier',
  }),
  str('CASSANDRA_USERNAME', undefined, 'Cassandra user (PasswordAuthenticator; with CASSANDRA_PASSWORD)', {
    raw: true,
  }),
  secret('CASSANDRA_PASSWORD', 'Cassandra password'),
  int('CASSANDRA_REQUEST_TIMEOUT_MS', 12000, 100, 300000, 'Cassandra: time a coordinator has to answer a query, ms'),
  ...tls('CASSANDRA', 'Cassandra (client encryption)'),
  str(
    'CASSANDRA_REPLICATION',
    "{'class': 'SimpleStrategy', 'replication_factor': 1}",
    'keyspace replication `migrate` uses when it creates the keyspace',
  ),

  topic('TRIGGER_TOPIC', 'enrolment.sync.trigger', 'triggers (from the API, the CLI and upstream services)'),
  topic('SYNC_TOPIC', 'batch.enrolment.sync.request', 'the sync events (output)'),
  topic('DEAD_LETTER_TOPIC', 'enrolment.sync.trigger.dlq', 'dead-lettered triggers, with the reason in headers'),
  topic('CHECKPOINT_TOPIC', 'enrolment.sync.checkpoints', 'compacted: how far each trigger in flight has got'),
  topic('TASK_TOPIC', 'enrolment.sync.tasks', 'token-range tasks of whole-batch triggers, shared by the group'),
  topic('STATUS_TOPIC', 'enrolment.sync.status', "compacted: each trigger's status"),
  int('SYNC_STATUS_RETENTION_MS', 7 * 86400000, 60000, 365 * 86400000, 'how long status records are kept (7 days), ms'),
  int('TOPIC_PARTITIONS', 4, 1, 10000, 'partitions of the topics `migrate` creates'),
  int('TOPIC_REPLICATION_FACTOR', 1, 1, 32, 'replication factor of the topics `migrate` creates'),

  str('CONSUMER_GROUP', (r) => `${String(r.get('SYNC_ENV'))}.enrolment-sync`, "the processor's consumer group", {
    defaultText: '{env}.enrolment-sync',
  }),
  oneOf(
    'SYNC_PROCESSING_GUARANTEE',
    'exactly_once',
    ['exactly_once', 'at_least_once'],
    'see Guarantees (as Kafka Streams processing.guarantee)',
  ),
  int('SYNC_SESSION_TIMEOUT_MS', 30000, 1000, 3600000, 'consumer group session timeout, ms'),
  int('SYNC_HEARTBEAT_INTERVAL_MS', 3000, 100, 600000, 'consumer group heartbeat interval, ms'),
  int('SYNC_TXN_MAX_RECORDS', 50000, 1, 10000000, 'events per transaction (and checkpoint), at most'),
  int('SYNC_TXN_MAX_MS', 1000, 10, 600000, 'work per transaction (and checkpoint), at most, ms'),
  int('SYNC_TRANSACTION_TIMEOUT_MS', 60000, 1000, 900000, "the broker's transaction timeout, ms"),
  int('SYNC_SHUTDOWN_TIMEOUT_MS', 10000, 100, 600000, 'on SIGTERM: time to commit the work in flight and leave, ms'),
  int('SYNC_DLQ_MAX_BYTES', 900000, 4096, 100 * 1024 * 1024, 'a dead letter larger than this is truncated, bytes'),
  str('PROCESSOR_HOST', '127.0.0.1', '`processor` command: address of /health, /ready, /metrics'),
  int('PROCESSOR_PORT', 9001, 0, 65535, '`processor` command: port of /health, /ready, /metrics'),
  int('SYNC_MAX_EVENTS_PER_SECOND', 0, 0, 100000000, 'output cap per processor process; 0: unlimited'),
  bool('SYNC_FAN_OUT', true, "split a whole-batch scan into tasks over the group's members"),
  int('SYNC_FAN_OUT_TASKS', 0, 0, 10000, "tasks per whole-batch scan; 0: twice the task topic's partitions"),
  oneOf('SYNC_EVENT_FORMAT', 'json', ['json', 'avro'], 'sync event encoding (avro: Confluent wire format)'),
  bool('SYNC_INCLUDE_INACTIVE', false, 'sync inactive enrolments too (a trigger may override)'),
  bool('SYNC_INCLUDE_COMPLETED', true, 'sync completed enrolments (a trigger may override)'),
  oneOf('SYNC_READ_PLAN', 'auto', ['auto', 'index', 'scan'], 'how a whole batch is read (docs/read-plan.md)'),
  int('SYNC_PAGE_SIZE', 5000, 10, 100000, 'Cassandra page size, rows; 1000: less memory, less speed (runbook)'),
  int('SYNC_SCAN_RANGES', 64, 1, 4096, 'token ranges a table scan is cut into'),
  int('SYNC_SCAN_CONCURRENCY', 4, 1, 256, 'token ranges read at once'),
  int('SYNC_INDEX_PROBE_ROWS', 5000, 0, 10000000, 'index probe: rows read before choosing the plan'),
  int('SYNC_INDEX_PROBE_MS', 1000, 0, 600000, 'index probe: time before choosing the plan, ms'),
  int('SYNC_INDEX_COST_FACTOR', 8, 1, 100000000, 'table rows a scan reads in the time the index returns one'),
  int('SYNC_PRODUCE_BATCH', 1000, 1, 100000, 'events per produce request'),
  int('SYNC_PRODUCE_IN_FLIGHT', 4, 1, 5, 'produce requests in flight per producer'),
  int('SYNC_KEY_LOOKUP_CONCURRENCY', 64, 1, 1024, 'Cassandra reads at once when a trigger lists its users'),
  int(
    'SYNC_CARRIED_ENROLMENTS_MAX_AGE_MS',
    300000,
    0,
    86400000,
    "a trigger's carried enrolments up to this old stand in for a read; 0: never, ms",
  ),
  int('SYNC_PARTITIONS_CONCURRENTLY', 4, 1, 1000, 'input partitions a processor works on at once'),
  int('SYNC_RETRIES', 5, 0, 1000, 'retries of a transient failure before the trigger is dead-lettered'),
  int('SYNC_RETRY_INITIAL_MS', 300, 1, 600000, 'first retry delay (exponential backoff with jitter), ms'),
  int('SYNC_RETRY_MAX_MS', 10000, 1, 3600000, 'longest retry delay, ms'),

  str('API_HOST', '127.0.0.1', 'API address; other than loopback, authentication is required'),
  secret('API_JWT_SECRET', 'HS256 secret, at least 32 bytes'),
  file('API_JWT_PUBLIC_KEY_FILE', 'RS256 public key or certificate (PEM)'),
  file('API_JWT_JWKS_FILE', 'JWKS file (RS/PS/ES256)'),
  str('API_JWT_ISSUER', '', 'required token issuer (with API_AUTH=jwt)', { defaultText: 'unset' }),
  str('API_JWT_AUDIENCE', '', 'required token audience (with API_AUTH=jwt)', { defaultText: 'unset' }),
  str('API_JWT_USER_CLAIM', 'sub', 'claim naming the user'),
  str(
    'API_JWT_ROLES_CLAIM',
    'roles',
    'claim listing roles (array or space-separated; a dotted path reaches nested claims)',
  ),
  str('API_JWT_ADMIN_ROLE', 'admin', 'role that may sync any user and read trigger status'),
  int('API_JWT_CLOCK_TOLERANCE_S', 30, 0, 600, 'clock skew allowed on exp/nbf, s'),
  oneOf(
    'API_AUTH',
    (r) =>
      ['API_JWT_SECRET', 'API_JWT_PUBLIC_KEY_FILE', 'API_JWT_JWKS_FILE'].some((k) => r.get(k) !== undefined)
        ? 'jwt'
        : 'off',
    ['off', 'jwt'],
    'bearer JWT authentication of the API (see Authentication)',
    { defaultText: '`jwt` when a key is set, else `off`' },
  ),
  int('API_PORT', 9000, 0, 65535, 'API port'),
  int('API_MAX_USERS', 1000, 1, 100000, 'distinct users per request, at most'),
  int('API_BODY_LIMIT_BYTES', 262144, 1024, 64 * 1024 * 1024, 'request body size, at most (413 beyond), bytes'),
  int('API_DEPENDENCY_TIMEOUT_MS', 5000, 100, 120000, 'Cassandra or Kafka answer within this or 503, ms'),
  int('API_MAX_IN_FLIGHT', 256, 1, 100000, 'requests handled at once (503 with Retry-After beyond)'),
  int('API_PUBLISH_QUEUE_MAX', 2000, 1, 1000000, 'triggers waiting for Kafka (503 with Retry-After beyond)'),
  int('API_PUBLISH_PRODUCERS', 2, 1, 64, 'trigger transactions in flight at once, one producer each'),
  // 2 ms: measured (docs/benchmarks.md, "API at scale, second pass"), fewer, fuller transactions
  // cut the API's CPU per request by about a third at 8 connections, for at most 2 ms of latency.
  int(
    'API_PUBLISH_LINGER_MS',
    2,
    0,
    1000,
    'how long an idle producer waits for more requests to share its transaction, ms',
  ),
  // 50 ms: measured (docs/benchmarks.md, "Sticky partitions for API triggers"): a send's triggers
  // and their status records on one partition each, the processor's waves on fewer at once.
  int(
    'API_STICKY_PARTITION_MS',
    50,
    0,
    60000,
    "the API's user-list triggers stay on one trigger and status partition this long, ms (0: spread by id)",
  ),
  int('API_RETRY_AFTER_S', 1, 1, 3600, 'Retry-After of a 503, s'),
  {
    name: 'API_DRAIN_DELAY_MS',
    kind: 'int',
    default: (r) => (isLoopback(String(r.get('API_HOST'))) ? 0 : 5000),
    defaultText: '0 on loopback, else 5000',
    min: 0,
    max: 300000,
    description: 'on SIGTERM: /ready answers 503 this long before the server stops accepting, ms',
  },
  int('API_SHUTDOWN_TIMEOUT_MS', 10000, 0, 300000, 'on SIGTERM: time the requests in flight get to finish, ms'),
];

const BY_NAME = new Map(CONFIG_SCHEMA.map((v) => [v.name, v]));

export interface ReadResult {
  values: Map<string, Value>;
  /** Variables taken from the environment, as opposed to defaults. */
  fromEnv: Set<string>;
  /** One line per problem, each naming its variable first. */
  problems: string[];
}

/** Reads and checks every variable of the schema, in order; never throws on bad input. */
export function readEnvironment(env: Record<string, string | undefined>): ReadResult {
  const values = new Map<string, Value>();
  const fromEnv = new Set<string>();
  const problems: string[] = [];
  for (const spec of CONFIG_SCHEMA) {
    const given = env[spec.name];
    const blank = given === undefined || given.trim() === '';
    const fallback = typeof spec.default === 'function' ? spec.default(values) : spec.default;
    if (blank) {
      values.set(spec.name, spec.kind === 'list' && typeof fallback === 'string' ? splitList(fallback) : fallback);
      continue;
    }
    fromEnv.add(spec.name);
    const { value, problem } = parseValue(spec, given, fallback);
    if (problem !== undefined) problems.push(problem);
    values.set(spec.name, value);
  }
  return { values, fromEnv, problems };
}

const splitList = (text: string): string[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

/** `host:port` or `[v6]:port` (the port optional unless `portRequired`), with a port in 1–65535. */
function isAddress(item: string, portRequired: boolean): boolean {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:\s[\]]+)(?::(\d+))?$/.exec(item);
  if (!match) return false;
  if (match[2] === undefined) return !portRequired;
  const port = Number(match[2]);
  return port >= 1 && port <= 65535;
}

function parseValue(spec: VariableSpec, given: string, fallback: Value): { value: Value; problem?: string } {
  const { name } = spec;
  const text = spec.raw ? given : spec.lowercase ? given.trim().toLowerCase() : given.trim();
  switch (spec.kind) {
    case 'int': {
      // Decimal digits only: Number() would also take '0x10', '1e3' and '' as numbers.
      const n = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(n) || n < (spec.min ?? -Infinity) || n > (spec.max ?? Infinity)) {
        return {
          value: fallback,
          problem: `${name} must be a whole number from ${spec.min} to ${spec.max}, got '${given}'`,
        };
      }
      return { value: n };
    }
    case 'bool': {
      if (['true', '1', 'yes'].includes(text.toLowerCase())) return { value: true };
      if (['false', '0', 'no'].includes(text.toLowerCase())) return { value: false };
      return { value: fallback, problem: `${name} must be true or false, got '${given}'` };
    }
    case 'enum': {
      if (!(spec.allowed ?? []).includes(text)) {
        return { value: fallback, problem: `${name} must be one of ${(spec.allowed ?? []).join(', ')}, got '${text}'` };
      }
      return { value: text };
    }
    case 'list': {
      const items = splitList(text);
      if (items.length === 0) return { value: items, problem: `${name} must list at least one address` };
      const bad = spec.port ? items.find((item) => !isAddress(item, spec.port === 'required')) : undefined;
      if (bad !== undefined) {
        const form = spec.port === 'required' ? 'host:port' : 'host or host:port';
        return { value: items, problem: `${name} must list addresses as ${form} (port 1-65535), got '${bad}'` };
      }
      return { value: items };
    }
    case 'file':
      // A file the process must be able to read at start-up (a CA, a certificate, a key).
      return existsSync(text)
        ? { value: text }
        : { value: text, problem: `${name} names a file that does not exist: '${text}'` };
    case 'string':
      if (spec.pattern && !spec.pattern.test(text)) {
        return { value: text, problem: `${name} must be ${spec.patternText}, got '${text}'` };
      }
      return { value: text };
  }
}

/** Typed access to what readEnvironment read; a name outside the schema is a programming error. */
export class ConfigValues {
  constructor(private readonly values: ReadonlyMap<string, Value>) {}

  private get(name: string, kind: VariableKind | VariableKind[]): Value {
    const spec = BY_NAME.get(name);
    const kinds = Array.isArray(kind) ? kind : [kind];
    if (!spec || !kinds.includes(spec.kind))
      throw new Error(`config: ${name} is not a ${kinds.join('/')} in CONFIG_SCHEMA`);
    return this.values.get(name);
  }
  string(name: string): string {
    return String(this.get(name, ['string', 'enum']) ?? '');
  }
  optional(name: string): string | undefined {
    return this.get(name, ['string', 'enum', 'file']) as string | undefined;
  }
  int(name: string): number {
    return this.get(name, 'int') as number;
  }
  bool(name: string): boolean {
    return this.get(name, 'bool') as boolean;
  }
  list(name: string): string[] {
    return this.get(name, 'list') as string[];
  }
}

export interface EffectiveSetting {
  name: string;
  /** Redacted for secrets: (set) or (unset). */
  value: string;
  source: 'env' | 'default';
  secret: boolean;
}

/** The effective settings as an operator may see them: every secret redacted. */
export function effectiveSettings(read: ReadResult): EffectiveSetting[] {
  return CONFIG_SCHEMA.map((spec) => {
    const v = read.values.get(spec.name);
    const shown =
      spec.secret === true
        ? v === undefined || v === ''
          ? '(unset)'
          : '(set)'
        : v === undefined
          ? '(unset)'
          : Array.isArray(v)
            ? v.join(',')
            : String(v);
    return {
      name: spec.name,
      value: shown,
      source: read.fromEnv.has(spec.name) ? 'env' : 'default',
      secret: spec.secret === true,
    };
  });
}
