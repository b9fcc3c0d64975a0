import { auth, Client, errors as cassandraErrors, policies, tracker, types } from 'cassandra-driver';
import type { Settings } from '../config';
import { isSyncError, SyncError } from '../errors';
import { describeSecurityFailure, readTlsMaterial } from '../util/tls';

// The driver checks `instanceof` its RequestTracker class, which its typings declare only as an
// interface.
const RequestTrackerBase = (tracker as unknown as { RequestTracker: new () => tracker.RequestTracker }).RequestTracker;

/** A request tracker that only counts, for a metric: told of every request's end, ok or not. */
export function countingTracker(count: (outcome: 'ok' | 'error') => void): tracker.RequestTracker {
  return new (class extends RequestTrackerBase {
    override onSuccess(): void {
      count('ok');
    }
    override onError(): void {
      count('error');
    }
  })();
}

export function createCassandra(
  settings: Settings['cassandra'],
  overrides: { keyspace?: string; requestTracker?: tracker.RequestTracker } = {},
): Client {
  return new Client({
    ...(overrides.requestTracker && { requestTracker: overrides.requestTracker }),
    contactPoints: settings.contactPoints,
    localDataCenter: settings.localDataCenter,
    keyspace: overrides.keyspace,
    authProvider:
      settings.username !== undefined
        ? new auth.PlainTextAuthProvider(settings.username, settings.password ?? '')
        : undefined,
    // Client encryption; the server's certificate must chain to CASSANDRA_TLS_CA_FILE (or a system CA).
    sslOptions: settings.tls ? readTlsMaterial(settings.tls, 'CASSANDRA') : undefined,
    socketOptions: { connectTimeout: 3000, readTimeout: settings.requestTimeoutMs },
    queryOptions: { prepare: true, consistency: types.consistencies.localQuorum },
    pooling: { coreConnectionsPerHost: { [types.distance.local]: 2 } },
    // The driver's default waits up to 10 minutes between reconnection attempts; a processor
    // waiting out an outage should notice a node that is back within seconds.
    policies: { reconnection: new policies.reconnection.ExponentialReconnectionPolicy(200, 5000, false) },
  });
}

const codes = types.responseErrorCodes;
// Native-protocol server errors that mean the cluster cannot serve anyone right now.
const CLUSTER_UNAVAILABLE_CODES = new Set<number>([
  codes.overloaded,
  codes.isBootstrapping,
  codes.unavailableException,
  codes.truncateError,
]);
// One request failed on the replicas (a slow or failed read); the next may well succeed.
const REQUEST_FAILED_CODES = new Set<number>([
  codes.readTimeout,
  codes.writeTimeout,
  codes.readFailure,
  codes.writeFailure,
  codes.serverError,
]);
const UNAUTHORIZED_CODES = new Set<number>([codes.unauthorized, codes.badCredentials]);
const CONNECTION_TROUBLE = /ECONNREFUSED|ECONNRESET|EPIPE|socket|connection.*clos|closed connection|not connected/i;

/** Connects `client`; a failure names the contact points and the variable they came from. */
export async function connectCassandra(client: Client, contactPoints: readonly string[]): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    throw translateCassandraError(
      err,
      `connecting to Cassandra at ${contactPoints.join(',')} (CASSANDRA_CONTACT_POINTS)`,
    );
  }
}

/**
 * Translates a driver error once, at the adapter's edge, into the outcome the runtime acts on
 * (see ErrorKind): an unreachable cluster is an outage, a timed-out or failed read is transient,
 * a refused query (no index, bad schema) is a configuration error, a refused login or grant is
 * unauthorized.
 */
export function translateCassandraError(err: unknown, what: string): SyncError {
  if (isSyncError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  // A wrong password or an untrusted certificate: say so, naming the variables to check.
  const security = describeSecurityFailure(err, 'Cassandra', {
    credentials: 'CASSANDRA_USERNAME and CASSANDRA_PASSWORD',
    tlsPrefix: 'CASSANDRA',
  });
  if (security) return new SyncError(security.code, `${what}: ${security.message}`, { retriable: false, cause: err });
  if (err instanceof cassandraErrors.AuthenticationError) {
    return new SyncError('SYNC_UNAUTHORIZED', `${what}: Cassandra refused the credentials: ${message}`, {
      retriable: false,
      cause: err,
    });
  }
  if (err instanceof cassandraErrors.NoHostAvailableError) {
    const inner = Object.entries((err as { innerErrors?: Record<string, unknown> }).innerErrors ?? {});
    const authFailure = inner.find(([, e]) => e instanceof cassandraErrors.AuthenticationError)?.[1];
    if (authFailure) return translateCassandraError(authFailure, what);
    // The driver's message inlines its first inner error, stack and all, over several lines;
    // one line per host tried says the same.
    const hosts = inner.map(([host, e]) => `${host}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
    const detail = hosts.length > 0 ? `no host answered (${hosts.join('; ')})` : message.split('\n')[0];
    return new SyncError('SYNC_CASSANDRA_UNAVAILABLE', `${what}: Cassandra unavailable: ${detail}`, {
      retriable: true,
      cause: err,
    });
  }
  if (err instanceof cassandraErrors.OperationTimedOutError) {
    return new SyncError('SYNC_CASSANDRA_REQUEST_FAILED', `${what}: no answer in time: ${message}`, {
      retriable: true,
      cause: err,
    });
  }
  if (err instanceof cassandraErrors.ResponseError) {
    if (CLUSTER_UNAVAILABLE_CODES.has(err.code)) {
      return new SyncError('SYNC_CASSANDRA_UNAVAILABLE', `${what}: ${message}`, { retriable: true, cause: err });
    }
    if (REQUEST_FAILED_CODES.has(err.code)) {
      return new SyncError('SYNC_CASSANDRA_REQUEST_FAILED', `${what}: ${message}`, { retriable: true, cause: err });
    }
    if (UNAUTHORIZED_CODES.has(err.code)) {
      return new SyncError('SYNC_UNAUTHORIZED', `${what}: Cassandra refused access: ${message}`, {
        retriable: false,
        cause: err,
      });
    }
    return new SyncError('SYNC_CONFIG', `${what}: Cassandra rejected the query: ${message}`, {
      retriable: false,
      cause: err,
    });
  }
  if (CONNECTION_TROUBLE.test(message)) {
    return new SyncError('SYNC_CASSANDRA_UNAVAILABLE', `${what}: ${message}`, { retriable: true, cause: err });
  }
  return new SyncError('SYNC_CASSANDRA_REQUEST_FAILED', `${what}: ${message}`, { retriable: true, cause: err });
}
