import { readFileSync } from 'node:fs';
import path from 'node:path';

/** What infra/secure.sh generated: addresses, users, passwords, and the certificate files. */
export interface SecureServers {
  tlsDir: string;
  kafkaSaslSsl: string;
  kafkaMutualTls: string;
  kafkaUser: string;
  kafkaPassword: string;
  cassandra: string;
  cassandraUser: string;
  cassandraPassword: string;
  file(name: 'ca.pem' | 'rogue-ca.pem' | 'server.pem' | 'server.key' | 'client.pem' | 'client.key'): string;
  /** The variables a production deployment would set, for this test's secured servers. */
  env(overrides?: Record<string, string>): Record<string, string>;
  kafkaPid(): number;
}

export function secureServers(): SecureServers {
  const root = path.resolve(__dirname, '../..');
  const runDir = process.env.SECURE_RUN_DIR ?? path.join(root, '.run/secure');
  const text = readFileSync(path.join(runDir, 'secrets.env'), 'utf8');
  const vars = Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const tlsDir = vars.SECURE_TLS_DIR as string;
  const servers: SecureServers = {
    tlsDir,
    kafkaSaslSsl: vars.SECURE_KAFKA_SASL_SSL as string,
    kafkaMutualTls: vars.SECURE_KAFKA_MTLS as string,
    kafkaUser: vars.SECURE_KAFKA_USER as string,
    kafkaPassword: vars.SECURE_KAFKA_PASSWORD as string,
    cassandra: vars.SECURE_CASSANDRA as string,
    cassandraUser: vars.SECURE_CASSANDRA_USER as string,
    cassandraPassword: vars.SECURE_CASSANDRA_PASSWORD as string,
    file: (name) => path.join(tlsDir, name),
    env: (overrides = {}) => ({
      KAFKA_BROKERS: servers.kafkaSaslSsl,
      KAFKA_TLS_CA_FILE: servers.file('ca.pem'),
      KAFKA_SASL_MECHANISM: 'scram-sha-256',
      KAFKA_SASL_USERNAME: servers.kafkaUser,
      KAFKA_SASL_PASSWORD: servers.kafkaPassword,
      CASSANDRA_CONTACT_POINTS: servers.cassandra,
      CASSANDRA_TLS_CA_FILE: servers.file('ca.pem'),
      CASSANDRA_USERNAME: servers.cassandraUser,
      CASSANDRA_PASSWORD: servers.cassandraPassword,
      ...overrides,
    }),
    kafkaPid: () => Number(readFileSync(path.join(runDir, 'kafka.pid'), 'utf8').trim()),
  };
  return servers;
}
