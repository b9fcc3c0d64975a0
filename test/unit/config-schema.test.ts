import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cli } from '../../src/cli';
import { loadConfig } from '../../src/config';
import { CONFIG_SCHEMA, ConfigValues, effectiveSettings, readEnvironment } from '../../src/config-schema';
import {
  configRows,
  configTable,
  tableInReadme,
  TABLE_END,
  TABLE_START,
  withConfigTable,
} from '../../src/config-table';
import { DEFAULT_REPLICATION } from '../../src/migrate';

const README = path.join(__dirname, '../../README.md');

describe('the configuration schema', () => {
  test('names are unique and each has a description', () => {
    const names = CONFIG_SCHEMA.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
    for (const v of CONFIG_SCHEMA) expect(v.description.length).toBeGreaterThan(5);
  });

  test('the README table is the one generated from the schema (run `npm run config-table` when this fails)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(tableInReadme(readme)).toEqual(configRows());
    // Byte for byte too: the generator lays it out as prettier does.
    expect(withConfigTable(readme)).toBe(readme);
  });

  test('the README check fails on a table that differs from the schema', () => {
    const readme = readFileSync(README, 'utf8');
    const stale = readme.replace('| `SYNC_RETRIES` ', '| `SYNC_RETRYS` ');
    expect(stale).not.toBe(readme);
    expect(tableInReadme(stale)).not.toEqual(configRows());
    const missingRow = readme.replace(/^\| `SYNC_KEY_LOOKUP_CONCURRENCY`.*\n/m, '');
    expect(tableInReadme(missingRow)).not.toEqual(configRows());
    expect(tableInReadme('no table here')).toEqual([]);
  });

  test('the table lists the settings the old README missed, and says logs go to stderr', () => {
    const table = configTable();
    for (const name of [
      'SYNC_RETRIES',
      'SYNC_KEY_LOOKUP_CONCURRENCY',
      'SYNC_PARTITIONS_CONCURRENTLY',
      'CONSUMER_GROUP',
      'KAFKA_CLIENT_ID',
      'KAFKA_CONNECTION_TIMEOUT_MS',
      'KAFKA_REQUEST_TIMEOUT_MS',
      'CASSANDRA_REQUEST_TIMEOUT_MS',
      'CASSANDRA_REPLICATION',
    ]) {
      expect(table).toContain(`\`${name}\``);
    }
    expect(table).toMatch(/LOG_LEVEL.*stderr/);
    expect(table).not.toMatch(/stdout/);
    expect(TABLE_START).toContain('config-table');
    expect(TABLE_END).toContain('config-table');
  });

  test("migrate's replication default is the schema's", () => {
    expect(loadConfig({}).cassandra.replication).toBe(DEFAULT_REPLICATION);
  });

  test('every bad variable is named in one error, whatever its type', () => {
    const env: Record<string, string> = {};
    for (const v of CONFIG_SCHEMA) {
      if (v.kind === 'int') env[v.name] = 'lots';
      if (v.kind === 'bool') env[v.name] = 'maybe';
      if (v.kind === 'enum') env[v.name] = 'bogus';
      if (v.kind === 'file') env[v.name] = '/no/such/file.pem';
    }
    const bad = Object.keys(env);
    expect(bad.length).toBeGreaterThan(60);
    let error: { code?: string; message: string; field?: string } = { message: '' };
    try {
      loadConfig(env);
    } catch (err) {
      error = err as typeof error;
    }
    expect(error.code).toBe('SYNC_CONFIG');
    const firstLine = error.message.split('\n')[0] as string;
    for (const name of bad) {
      expect(error.message).toContain(`\n  - ${name} `);
      expect(firstLine).toContain(name);
    }
    expect(error.message).toContain("SYNC_RETRIES must be a whole number from 0 to 1000, got 'lots'");
    expect(error.message).toContain("SYNC_FAN_OUT must be true or false, got 'maybe'");
    expect(error.message).toContain("SYNC_READ_PLAN must be one of auto, index, scan, got 'bogus'");
  });

  test('a whole number is decimal digits: hex, exponents and fractions are refused, spaces trimmed', () => {
    for (const bad of ['0x10', '1e3', '1.5', '12abc', '1_000']) {
      expect(() => loadConfig({ TOPIC_PARTITIONS: bad })).toThrow(
        `TOPIC_PARTITIONS must be a whole number from 1 to 10000, got '${bad}'`,
      );
    }
    expect(loadConfig({ TOPIC_PARTITIONS: ' 12 ' }).topics.partitions).toBe(12);
    expect(loadConfig({ TOPIC_PARTITIONS: '' }).topics.partitions).toBe(4);
  });

  test('brokers need host:port; contact points take a host alone; a bad one is named', () => {
    expect(() => loadConfig({ KAFKA_BROKERS: 'localhost' })).toThrow(
      "KAFKA_BROKERS must list addresses as host:port (port 1-65535), got 'localhost'",
    );
    expect(() => loadConfig({ KAFKA_BROKERS: 'kafka-1:9092, kafka-2' })).toThrow(/got 'kafka-2'/);
    expect(() => loadConfig({ KAFKA_BROKERS: 'kafka-1:0' })).toThrow(/got 'kafka-1:0'/);
    expect(() => loadConfig({ KAFKA_BROKERS: 'kafka-1:9092:1' })).toThrow(/got 'kafka-1:9092:1'/);
    expect(loadConfig({ KAFKA_BROKERS: 'kafka-1:9092, [::1]:9093' }).kafka.brokers).toEqual([
      'kafka-1:9092',
      '[::1]:9093',
    ]);
    expect(loadConfig({ CASSANDRA_CONTACT_POINTS: 'cass-1,cass-2:9142' }).cassandra.contactPoints).toEqual([
      'cass-1',
      'cass-2:9142',
    ]);
    expect(() => loadConfig({ CASSANDRA_CONTACT_POINTS: 'cass-1:x' })).toThrow(
      "CASSANDRA_CONTACT_POINTS must list addresses as host or host:port (port 1-65535), got 'cass-1:x'",
    );
  });

  test('a name outside the schema is a programming error, not a silent default', () => {
    const v = new ConfigValues(readEnvironment({}).values);
    expect(() => v.int('NO_SUCH_VARIABLE')).toThrow(/NO_SUCH_VARIABLE/);
    expect(() => v.int('SYNC_ENV')).toThrow(/not a int/);
    expect(v.int('SYNC_RETRIES')).toBe(5);
  });

  test('derived defaults follow the variables they depend on', () => {
    const s = loadConfig({ SYNC_ENV: 'prod', API_HOST: '0.0.0.0', API_AUTH: 'off' });
    expect(s.topics.checkpoints).toBe('prod.enrolment.sync.checkpoints');
    expect(s.processor.groupId).toBe('prod.enrolment-sync');
    expect(s.api.drainDelayMs).toBe(5000);
    expect(loadConfig({ SCHEMA_REGISTRY_URL: 'https://r.example.org' }).registry.tls).toBeDefined();
  });
});

describe('effective settings, as `config` shows them', () => {
  const secrets = {
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: 'sync',
    KAFKA_SASL_PASSWORD: 'kafka-pw-123',
    CASSANDRA_USERNAME: 'cass',
    CASSANDRA_PASSWORD: 'cassandra-pw-456',
    API_JWT_SECRET: 'jwt-secret-'.padEnd(40, 'x'),
    API_JWT_ISSUER: 'https://id.example.org',
    API_JWT_AUDIENCE: 'enrolment-sync',
  };

  test('secrets are (set) or (unset), never their value; the rest is shown with its source', () => {
    const shown = effectiveSettings(readEnvironment(secrets));
    const byName = new Map(shown.map((s) => [s.name, s]));
    expect(byName.get('KAFKA_SASL_PASSWORD')).toEqual({
      name: 'KAFKA_SASL_PASSWORD',
      value: '(set)',
      source: 'env',
      secret: true,
    });
    expect(byName.get('CASSANDRA_PASSWORD')?.value).toBe('(set)');
    expect(byName.get('API_JWT_SECRET')?.value).toBe('(set)');
    expect(byName.get('KAFKA_TLS_KEY_PASSPHRASE')?.value).toBe('(unset)');
    expect(byName.get('SCHEMA_REGISTRY_PASSWORD')?.value).toBe('(unset)');
    expect(byName.get('KAFKA_SASL_USERNAME')?.value).toBe('sync');
    expect(byName.get('SYNC_TOPIC')).toMatchObject({ value: 'local.batch.enrolment.sync.request', source: 'default' });
    const text = JSON.stringify(shown);
    for (const secret of ['kafka-pw-123', 'cassandra-pw-456', 'jwt-secret-']) expect(text).not.toContain(secret);
    // Every secret-looking variable is declared secret.
    for (const v of CONFIG_SCHEMA) {
      if (/PASSWORD|SECRET|PASSPHRASE/.test(v.name)) expect(v.secret).toBe(true);
    }
  });

  describe('the config command', () => {
    const saved = { ...process.env };
    let out: string[];
    beforeEach(() => {
      out = [];
      jest.spyOn(console, 'log').mockImplementation((line: string) => void out.push(line));
    });
    afterEach(() => {
      jest.restoreAllMocks();
      process.env = { ...saved };
    });

    test('--json prints every variable, secrets redacted', async () => {
      process.env = { ...saved, ...secrets };
      await cli(['config', '--json']);
      const printed = JSON.parse(out.join('\n')) as Record<string, { value: string; source: string }>;
      expect(Object.keys(printed)).toEqual(CONFIG_SCHEMA.map((v) => v.name));
      expect(printed.KAFKA_SASL_PASSWORD).toEqual({ value: '(set)', source: 'env' });
      expect(printed.API_AUTH).toEqual({ value: 'jwt', source: 'default' });
      expect(out.join('\n')).not.toContain('kafka-pw-123');
    });

    test('plain text, one line a variable', async () => {
      process.env = { ...saved, ...secrets, SYNC_ENV: 'staging' };
      await cli(['config']);
      expect(out).toHaveLength(CONFIG_SCHEMA.length);
      expect(out).toContainEqual(expect.stringMatching(/^SYNC_ENV +staging$/));
      expect(out).toContainEqual(expect.stringMatching(/^CASSANDRA_PASSWORD +\(set\)$/));
      expect(out.join('\n')).not.toContain('cassandra-pw-456');
    });

    test('a bad environment is one error naming each bad variable', async () => {
      process.env = { ...saved, TOPIC_PARTITIONS: 'many', LOG_LEVEL: 'loud', KAFKA_SASL_PASSWORD: 'hunter2' };
      const failure = cli(['config']);
      await expect(failure).rejects.toMatchObject({ code: 'SYNC_CONFIG' });
      const message = await failure.then(
        () => '',
        (err: Error) => err.message,
      );
      expect(message.split('\n')[0]).toContain('TOPIC_PARTITIONS');
      expect(message.split('\n')[0]).toContain('LOG_LEVEL');
      expect(message).not.toContain('hunter2');
      expect(out).toEqual([]);
    });

    test('--markdown prints the README table', async () => {
      await cli(['config', '--markdown']);
      expect(out.join('\n')).toBe(configTable());
    });
  });
});

describe('every variable of the schema is wired to a setting', () => {
  const file = path.join(__dirname, '../../package.json');
  // Variables that only take effect with others (a key needs its issuer and audience, a TLS
  // file needs TLS on, a user name its password, a non-loopback host needs auth settled).
  const companions: Record<string, Record<string, string>> = {
    API_HOST: { API_AUTH: 'off' },
    API_JWT_SECRET: { API_JWT_ISSUER: 'i', API_JWT_AUDIENCE: 'a' },
    API_JWT_PUBLIC_KEY_FILE: { API_JWT_ISSUER: 'i', API_JWT_AUDIENCE: 'a' },
    API_JWT_JWKS_FILE: { API_JWT_ISSUER: 'i', API_JWT_AUDIENCE: 'a' },
    KAFKA_SASL_USERNAME: { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: 'p' },
    KAFKA_SASL_PASSWORD: { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' },
    KAFKA_SASL_MECHANISM: { KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' },
    CASSANDRA_USERNAME: { CASSANDRA_PASSWORD: 'p' },
    SCHEMA_REGISTRY_USERNAME: { SCHEMA_REGISTRY_PASSWORD: 'p' },
    SCHEMA_REGISTRY_PASSWORD: { SCHEMA_REGISTRY_USERNAME: 'u' },
    API_JWT_ISSUER: { API_JWT_SECRET: 's'.repeat(32), API_JWT_AUDIENCE: 'a' },
    API_JWT_AUDIENCE: { API_JWT_SECRET: 's'.repeat(32), API_JWT_ISSUER: 'i' },
    API_JWT_USER_CLAIM: { API_JWT_SECRET: 's'.repeat(32), API_JWT_ISSUER: 'i', API_JWT_AUDIENCE: 'a' },
    API_JWT_ROLES_CLAIM: { API_JWT_SECRET: 's'.repeat(32), API_JWT_ISSUER: 'i', API_JWT_AUDIENCE: 'a' },
    API_JWT_ADMIN_ROLE: { API_JWT_SECRET: 's'.repeat(32), API_JWT_ISSUER: 'i', API_JWT_AUDIENCE: 'a' },
    API_JWT_CLOCK_TOLERANCE_S: { API_JWT_SECRET: 's'.repeat(32), API_JWT_ISSUER: 'i', API_JWT_AUDIENCE: 'a' },
    API_AUTH: { API_JWT_SECRET: 's'.repeat(32), API_JWT_ISSUER: 'i', API_JWT_AUDIENCE: 'a' },
    SCHEMA_REGISTRY_TLS: { SCHEMA_REGISTRY_URL: 'https://r.example.org' },
    SYNC_SESSION_TIMEOUT_MS: { SYNC_HEARTBEAT_INTERVAL_MS: '100' },
    SYNC_HEARTBEAT_INTERVAL_MS: { SYNC_SESSION_TIMEOUT_MS: '3600000' },
    SYNC_TXN_MAX_MS: { SYNC_TRANSACTION_TIMEOUT_MS: '900000' },
    SYNC_TRANSACTION_TIMEOUT_MS: { SYNC_TXN_MAX_MS: '10' },
  };
  const tlsKey = (name: string): Record<string, string> => {
    const prefix = /^(.*)_TLS_(?:CA_FILE|CERT_FILE|KEY_FILE|KEY_PASSPHRASE)$/.exec(name)?.[1];
    if (prefix === undefined) return {};
    const both = { [`${prefix}_TLS_CERT_FILE`]: file, [`${prefix}_TLS_KEY_FILE`]: file };
    const https: Record<string, string> =
      prefix === 'SCHEMA_REGISTRY' ? { SCHEMA_REGISTRY_URL: 'https://r.example.org' } : {};
    return name.endsWith('_CA_FILE') ? https : { ...both, ...https };
  };
  const other = path.join(__dirname, '../../tsconfig.json');
  /** Two valid values of the variable, different from each other. */
  const twoValues = (name: string): [string, string] => {
    const spec = CONFIG_SCHEMA.find((v) => v.name === name)!;
    switch (spec.kind) {
      case 'int':
        return [String(spec.min), String(spec.max)];
      case 'bool':
        return ['true', 'false'];
      case 'enum':
        return [spec.allowed![0]!, spec.allowed![1]!];
      case 'file':
        return [file, other];
      case 'list':
        return ['h1:1', 'h1:1,h2:2'];
      default:
        return name === 'SCHEMA_REGISTRY_URL'
          ? ['http://one:8081', 'http://two:8081']
          : ['value_one_'.padEnd(40, '1'), 'value_two_'.padEnd(40, '2')];
    }
  };

  test.each(CONFIG_SCHEMA.map((v) => v.name))('%s changes the settings', (name) => {
    const base = { ...(companions[name] ?? {}), ...tlsKey(name) };
    const [one, two] = twoValues(name);
    expect(JSON.stringify(loadConfig({ ...base, [name]: one }))).not.toBe(
      JSON.stringify(loadConfig({ ...base, [name]: two })),
    );
  });
});
