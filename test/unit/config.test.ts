import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';

describe('loadConfig', () => {
  test('defaults are the single-machine setup', () => {
    const s = loadConfig({});
    expect(s.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(s.cassandra.contactPoints).toEqual(['127.0.0.1:9042']);
    expect(s.registry.url).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
    expect(s.topics.output).toBe('local.batch.enrolment.sync.request');
    expect(s.topics.partitions).toBe(4);
    expect(s.processor.includeInactive).toBe(false);
    expect(s.processor.includeCompleted).toBe(true);
    expect(Object.isFrozen(s.processor)).toBe(true);
  });

  test('the environment prefix names the topics; production addresses come from variables', () => {
    const s = loadConfig({
      SYNC_ENV: 'prod',
      KAFKA_BROKERS: 'k1:9092, k2:9092',
      CASSANDRA_CONTACT_POINTS: 'c1,c2',
      SYNC_INCLUDE_INACTIVE: 'yes',
    });
    expect(s.topics.output).toBe('prod.batch.enrolment.sync.request');
    expect(s.topics.trigger).toBe('prod.enrolment.sync.trigger');
    expect(s.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(s.cassandra.contactPoints).toEqual(['c1', 'c2']);
    expect(s.processor.includeInactive).toBe(true);
  });

  test('every problem is reported at once, naming each variable', () => {
    let message = '';
    try {
      loadConfig({
        TOPIC_PARTITIONS: 'many',
        SYNC_EVENT_FORMAT: 'xml',
        SYNC_INCLUDE_INACTIVE: 'maybe',
        CASSANDRA_KEYSPACE: 'bad-name',
      });
    } catch (err) {
      expect((err as { code: string }).code).toBe('SYNC_CONFIG');
      message = (err as Error).message;
    }
    expect(message).toMatch(/TOPIC_PARTITIONS/);
    expect(message).toMatch(/SYNC_EVENT_FORMAT/);
    expect(message).toMatch(/SYNC_INCLUDE_INACTIVE/);
    expect(message).toMatch(/CASSANDRA_KEYSPACE/);
  });
});

describe('loadConfig: secure connections and the API', () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'cfg-')), 'ca.pem');
  writeFileSync(file, 'not checked here');

  const problems = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
      return '';
    } catch (err) {
      return (err as Error).message;
    }
  };

  test('the single-machine default is plaintext, no credentials, API auth off', () => {
    const s = loadConfig({});
    expect(s.kafka.tls).toBeUndefined();
    expect(s.kafka.sasl).toBeUndefined();
    expect(s.cassandra.tls).toBeUndefined();
    expect(s.registry).toEqual({
      url: 'http://127.0.0.1:8081/apis/ccompat/v7',
      username: undefined,
      password: undefined,
      tls: undefined,
    });
    expect(s.api.auth).toBe('off');
    expect(s.api.drainDelayMs).toBe(0);
  });

  test('Kafka TLS + SCRAM, Cassandra TLS + password, registry basic auth over https', () => {
    const s = loadConfig({
      KAFKA_TLS_CA_FILE: file,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'sync',
      KAFKA_SASL_PASSWORD: 'pw',
      CASSANDRA_TLS: 'true',
      CASSANDRA_USERNAME: 'sync',
      CASSANDRA_PASSWORD: 'pw',
      SCHEMA_REGISTRY_URL: 'https://registry.example.org/apis/ccompat/v7',
      SCHEMA_REGISTRY_USERNAME: 'sync',
      SCHEMA_REGISTRY_PASSWORD: 'pw',
    });
    expect(s.kafka.tls).toMatchObject({ caFile: file, certFile: undefined });
    expect(s.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'sync', password: 'pw' });
    expect(s.cassandra.tls).toMatchObject({ caFile: undefined });
    expect(s.registry.tls).toBeDefined();
    expect(s.registry.username).toBe('sync');
  });

  test('inconsistent security settings are all reported, each naming its variable', () => {
    const message = problems({
      KAFKA_TLS_CA_FILE: '/no/such/ca.pem',
      KAFKA_TLS_CERT_FILE: file,
      KAFKA_SASL_MECHANISM: 'gssapi',
      CASSANDRA_USERNAME: 'sync',
      SCHEMA_REGISTRY_URL: 'http://user:pw@registry:8081',
      SCHEMA_REGISTRY_USERNAME: 'only-user',
    });
    expect(message).toMatch(/KAFKA_TLS_CA_FILE names a file that does not exist/);
    expect(message).toMatch(/KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together/);
    expect(message).toMatch(/KAFKA_SASL_MECHANISM must be one of plain, scram-sha-256, scram-sha-512/);
    expect(message).toMatch(/CASSANDRA_PASSWORD must be set when CASSANDRA_USERNAME is/);
    expect(message).toMatch(/SCHEMA_REGISTRY_URL must not carry credentials/);
    expect(message).toMatch(/SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD go together/);
    expect(problems({ KAFKA_SASL_MECHANISM: 'plain' })).toMatch(/KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/);
  });

  test('API auth: off on loopback, required elsewhere unless API_AUTH=off says so', () => {
    expect(problems({ API_HOST: '0.0.0.0' })).toMatch(/API_HOST 0.0.0.0 is reachable from other machines/);
    expect(loadConfig({ API_HOST: '0.0.0.0', API_AUTH: 'off' }).api).toMatchObject({ auth: 'off', drainDelayMs: 5000 });
    const s = loadConfig({
      API_HOST: '0.0.0.0',
      API_JWT_SECRET: 's'.repeat(32),
      API_JWT_ISSUER: 'https://id.example.org',
      API_JWT_AUDIENCE: 'enrolment-sync',
    });
    expect(s.api.auth).toBe('jwt');
    expect(s.api.jwt).toMatchObject({ adminRole: 'admin', rolesClaim: 'roles', userClaim: 'sub' });
  });

  test('API auth: one key, a long enough secret, issuer and audience', () => {
    const message = problems({ API_AUTH: 'jwt', API_JWT_SECRET: 'short', API_JWT_JWKS_FILE: file });
    expect(message).toMatch(/exactly one of API_JWT_SECRET, API_JWT_PUBLIC_KEY_FILE, API_JWT_JWKS_FILE/);
    expect(message).toMatch(/API_JWT_SECRET must be at least 32 bytes/);
    expect(message).toMatch(/API_JWT_ISSUER must be set/);
    expect(message).toMatch(/API_JWT_AUDIENCE must be set/);
  });
});

describe('loadConfig: API group commit', () => {
  test('two producers and a 2 ms linger by default; out-of-range values are named', () => {
    const s = loadConfig({});
    expect(s.api.publishProducers).toBe(2);
    expect(s.api.publishLingerMs).toBe(2);
    expect(loadConfig({ API_PUBLISH_PRODUCERS: '4', API_PUBLISH_LINGER_MS: '3' }).api).toMatchObject({
      publishProducers: 4,
      publishLingerMs: 3,
    });
    expect(() => loadConfig({ API_PUBLISH_PRODUCERS: '0', API_PUBLISH_LINGER_MS: '-1' })).toThrow(
      /API_PUBLISH_PRODUCERS[\s\S]*API_PUBLISH_LINGER_MS|API_PUBLISH_LINGER_MS[\s\S]*API_PUBLISH_PRODUCERS/,
    );
  });
});
