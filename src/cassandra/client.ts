import { auth, Client, errors as cassandraErrors, types } from 'cassandra-driver';
import type { Settings } from '../config';
import { isSyncError, SyncError } from '../errors';
import { describeSecurityFailure, readTlsMaterial } from '../util/tls';

export function createCassandra(settings: Settings['cassandra'], overrides: { keyspace?: string } = {}): Client {
  return new Client({
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
  });
}

// Server error codes of the native protocol that mean "try again later", not "your query is wrong".
const TRANSIENT_SERVER_CODES = new Set<number>([
  types.responseErrorCodes.overloaded,
  types.responseErrorCodes.isBootstrapping,
  types.responseErrorCodes.unavailableException,
  types.responseErrorCodes.readTimeout,
  types.responseErrorCodes.writeTimeout,
  types.responseErrorCodes.readFailure,
  types.responseErrorCodes.truncateError,
]);

/** Translates a driver error once, at the adapter's edge. */
export function translateCassandraError(err: unknown, what: string): SyncError {
  const message = err instanceof Error ? err.message : String(err);
  // A wrong password or an untrusted certificate: say so, and do not retry.
  const security = describeSecurityFailure(err, 'Cassandra', {
    credentials: 'CASSANDRA_USERNAME and CASSANDRA_PASSWORD',
    tlsPrefix: 'CASSANDRA',
  });
  if (security) return new SyncError(security.code, `${what}: ${security.message}`, { retriable: false, cause: err });
  if (err instanceof cassandraErrors.NoHostAvailableError || err instanceof cassandraErrors.OperationTimedOutError) {
    return new SyncError('SYNC_CASSANDRA_UNAVAILABLE', `${what}: Cassandra unavailable: ${message}`, {
      retriable: true,
      cause: err,
    });
  }
  if (err instanceof cassandraErrors.ResponseError) {
    if (TRANSIENT_SERVER_CODES.has(err.code)) {
      return new SyncError('SYNC_CASSANDRA_UNAVAILABLE', `${what}: ${message}`, { retriable: true, cause: err });
    }
    return new SyncError('SYNC_CONFIG', `${what}: Cassandra rejected the query: ${message}`, {
      retriable: false,
      cause: err,
    });
  }
  if (isSyncError(err)) return err;
  return new SyncError('SYNC_CASSANDRA_UNAVAILABLE', `${what}: ${message}`, { retriable: true, cause: err });
}
