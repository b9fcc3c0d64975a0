import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tableInReadme, TABLE_END, TABLE_START } from '../../src/config-table';

/**
 * `enrolment-sync config` as an operator runs it: the built CLI in a child process, its output
 * and exit code. Needs no server.
 */
const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist/src/cli.js');

function config(args: string[], extra: Record<string, string>) {
  // Only what the test sets: the machine's own variables must not leak into the expectations.
  const env = { PATH: process.env.PATH ?? '', ...extra };
  return spawnSync('node', [cli, 'config', ...args], { cwd: root, env, encoding: 'utf8', timeout: 30000 });
}

beforeAll(() => {
  if (!existsSync(cli)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
});

test('prints the effective settings with every secret redacted', () => {
  const secrets = {
    KAFKA_SASL_MECHANISM: 'scram-sha-256',
    KAFKA_SASL_USERNAME: 'sync',
    KAFKA_SASL_PASSWORD: 'kafka-secret-pw',
    CASSANDRA_USERNAME: 'cass',
    CASSANDRA_PASSWORD: 'cassandra-secret-pw',
    API_JWT_SECRET: 'jwt-secret-0123456789-0123456789-0123',
    API_JWT_ISSUER: 'https://id.example.org',
    API_JWT_AUDIENCE: 'enrolment-sync',
  };
  const text = config([], { ...secrets, SYNC_ENV: 'prod' });
  expect(text.status).toBe(0);
  expect(text.stdout).toMatch(/^SYNC_ENV +prod$/m);
  expect(text.stdout).toMatch(/^SYNC_TOPIC +prod\.batch\.enrolment\.sync\.request {2}\(default\)$/m);
  expect(text.stdout).toMatch(/^KAFKA_SASL_PASSWORD +\(set\)$/m);
  expect(text.stdout).toMatch(/^SCHEMA_REGISTRY_PASSWORD +\(unset\) {2}\(default\)$/m);
  const json = config(['--json'], secrets);
  expect(json.status).toBe(0);
  const parsed = JSON.parse(json.stdout) as Record<string, { value: string; source: string }>;
  expect(parsed.API_JWT_SECRET).toEqual({ value: '(set)', source: 'env' });
  expect(parsed.API_AUTH).toEqual({ value: 'jwt', source: 'default' });
  for (const out of [text.stdout + text.stderr, json.stdout + json.stderr]) {
    for (const secret of Object.values(secrets).filter((s) => s.includes('secret'))) expect(out).not.toContain(secret);
  }
});

test('bad variables: exit 2 with one message naming each, no stack trace', () => {
  const res = config([], { TOPIC_PARTITIONS: 'many', SYNC_READ_PLAN: 'fast', KAFKA_TLS_CA_FILE: '/no/ca.pem' });
  expect(res.status).toBe(2);
  expect(res.stdout).toBe('');
  const lines = res.stderr.trim().split('\n');
  expect(lines[0]).toBe('error: invalid configuration (KAFKA_TLS_CA_FILE, TOPIC_PARTITIONS, SYNC_READ_PLAN):');
  expect(res.stderr).toContain("TOPIC_PARTITIONS must be a whole number from 1 to 10000, got 'many'");
  expect(res.stderr).toContain("SYNC_READ_PLAN must be one of auto, index, scan, got 'fast'");
  expect(res.stderr).toContain("KAFKA_TLS_CA_FILE names a file that does not exist: '/no/ca.pem'");
  expect(res.stderr).not.toMatch(/^\s+at /m);
});

test('--markdown prints the table the README carries', () => {
  const res = config(['--markdown'], {});
  expect(res.status).toBe(0);
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const wrapped = `${TABLE_START}\n${res.stdout}${TABLE_END}`;
  expect(tableInReadme(wrapped)).toEqual(tableInReadme(readme));
  expect(tableInReadme(readme).length).toBeGreaterThan(90);
});
