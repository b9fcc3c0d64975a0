import { errors as cassandraErrors, types } from 'cassandra-driver';
import { translateCassandraError } from '../../src/cassandra/client';
import { errorKind } from '../../src/errors';
import { translateKafkaError } from '../../src/kafka/client';

/** Errors are classified once, at the adapters' edges, into what the runtime does about them. */
describe('error classification', () => {
  const responseError = (code: number) => new cassandraErrors.ResponseError(code, 'server says no');

  test.each([
    ['no host answers', new cassandraErrors.NoHostAvailableError({}), 'outage'],
    ['cluster overloaded', responseError(types.responseErrorCodes.overloaded), 'outage'],
    ['not enough replicas', responseError(types.responseErrorCodes.unavailableException), 'outage'],
    ['a read timed out on the replicas', responseError(types.responseErrorCodes.readTimeout), 'transient'],
    ['a read failed on the replicas', responseError(types.responseErrorCodes.readFailure), 'transient'],
    ['the client gave up waiting', new cassandraErrors.OperationTimedOutError('timeout'), 'transient'],
    ['a query the server refuses (no index)', responseError(types.responseErrorCodes.invalid), 'fatal'],
    ['a missing grant', responseError(types.responseErrorCodes.unauthorized), 'fatal'],
    ['bad credentials', new cassandraErrors.AuthenticationError('bad password'), 'fatal'],
    [
      'bad credentials behind "no host"',
      new cassandraErrors.NoHostAvailableError({ '127.0.0.1:9042': new cassandraErrors.AuthenticationError('no') }),
      'fatal',
    ],
  ])('Cassandra: %s → %s', (_what, err, kind) => {
    expect(errorKind(translateCassandraError(err, 'reading'))).toBe(kind);
  });

  test("no host answered: one line naming each host tried and why, not the driver's inlined stack", () => {
    const refused = (host: string) =>
      Object.assign(new Error(`connect ECONNREFUSED ${host}\n    at TCPConnectWrap`), {});
    const err = new cassandraErrors.NoHostAvailableError({
      '10.0.0.1:9042': refused('10.0.0.1:9042'),
      '10.0.0.2:9042': refused('10.0.0.2:9042'),
    });
    expect(translateCassandraError(err, 'connecting').message).toBe(
      'connecting: Cassandra unavailable: no host answered ' +
        '(10.0.0.1:9042: connect ECONNREFUSED 10.0.0.1:9042; 10.0.0.2:9042: connect ECONNREFUSED 10.0.0.2:9042)',
    );
  });

  const kafkajsError = (name: string, props: Record<string, unknown> = {}) =>
    Object.assign(new Error(`kafkajs ${name}`), { name, ...props });

  test.each([
    [
      'retries exhausted (the data-loss case: must wait, not dead-letter)',
      kafkajsError('KafkaJSNumberOfRetriesExceeded', {
        retriable: false,
        cause: kafkajsError('KafkaJSConnectionError'),
      }),
      'outage',
    ],
    ['connection refused', kafkajsError('KafkaJSConnectionError', { retriable: true }), 'outage'],
    ['a request timed out', kafkajsError('KafkaJSRequestTimeoutError', { retriable: true }), 'outage'],
    ['a fenced producer', kafkajsError('KafkaJSProtocolError', { type: 'PRODUCER_FENCED' }), 'fenced'],
    [
      'a stale epoch, wrapped',
      kafkajsError('KafkaJSNonRetriableError', {
        cause: kafkajsError('KafkaJSProtocolError', { type: 'INVALID_PRODUCER_EPOCH' }),
      }),
      'fenced',
    ],
    [
      'kafkajs refusing a call on an ended transaction',
      kafkajsError('KafkaJSNonRetriableError', { message: 'Cannot continue to use transaction once ended' }),
      'fenced',
    ],
    ['no ACL for the topic', kafkajsError('KafkaJSProtocolError', { type: 'TOPIC_AUTHORIZATION_FAILED' }), 'fatal'],
    ['SASL login refused', kafkajsError('KafkaJSSASLAuthenticationError'), 'fatal'],
    ['a record too large', kafkajsError('KafkaJSProtocolError', { type: 'MESSAGE_TOO_LARGE' }), 'transient'],
  ])('Kafka: %s → %s', (_what, err, kind) => {
    expect(errorKind(translateKafkaError(err, 'producing'))).toBe(kind);
  });

  // What @confluentinc/kafka-javascript rejects with: a LibrdKafkaError (built here by shape, so
  // the unit tests do not load the native module).
  const rdkafkaError = (code: number, flags: { isFatal?: boolean; isTxnRequiresAbort?: boolean } = {}) =>
    Object.assign(new Error(`librdkafka error ${code}`), {
      code,
      errno: code,
      origin: code < -1 ? 'local' : 'kafka',
      isFatal: false,
      isRetriable: false,
      isTxnRequiresAbort: false,
      ...flags,
    });

  test.each([
    ["fenced, librdkafka's local view (ERR__FENCED)", rdkafkaError(-144, { isFatal: true }), 'fenced'],
    ['fenced by the broker (PRODUCER_FENCED)', rdkafkaError(90, { isFatal: true }), 'fenced'],
    ['a stale epoch (INVALID_PRODUCER_EPOCH)', rdkafkaError(47), 'fenced'],
    ['any other fatal error: the producer is unusable', rdkafkaError(-150, { isFatal: true }), 'fenced'],
    ['a transactional call in the wrong state (ERR__STATE)', rdkafkaError(-172), 'fenced'],
    ['an abortable transaction error', rdkafkaError(-185, { isTxnRequiresAbort: true }), 'transient'],
    ['a record too large (MSG_SIZE_TOO_LARGE)', rdkafkaError(10), 'transient'],
    ['no ACL for the transactional id', rdkafkaError(53, { isFatal: true }), 'fatal'],
    ['no ACL for the topic', rdkafkaError(29), 'fatal'],
    ['SASL login refused (ERR__AUTHENTICATION)', rdkafkaError(-169), 'fatal'],
    ['timed out (ERR__TIMED_OUT)', rdkafkaError(-185), 'outage'],
    ['all brokers down (ERR__ALL_BROKERS_DOWN)', rdkafkaError(-187), 'outage'],
    ['broker transport failure (ERR__TRANSPORT)', rdkafkaError(-195), 'outage'],
  ])('librdkafka: %s', (_what, err, kind) => {
    expect(errorKind(translateKafkaError(err, 'producing'))).toBe(kind);
  });

  test('an error we did not translate is transient: retried, then dead-lettered, never a halt', () => {
    expect(errorKind(new TypeError('oops'))).toBe('transient');
  });
});
