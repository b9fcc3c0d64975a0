/**
 * Three projects: unit tests of pure logic (no servers); integration tests against the real
 * local servers (infra/services.sh); secure tests against a second, secured Kafka and Cassandra
 * (infra/secure.sh), started by the project's global setup and stopped by its teardown.
 */
// Type-checking is tsc's job (make lint); jest only transpiles (isolatedModules in tsconfig.json).
const tsJest = ['ts-jest', {}];

module.exports = {
  // Integration tests wait on real servers; unit tests finish in milliseconds either way.
  testTimeout: 120000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
    },
    {
      displayName: 'secure',
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/secure/**/*.test.ts'],
      // The plain servers too (the registry, the shared Cassandra in some tests).
      globalSetup: '<rootDir>/test/helpers/secure-setup.ts',
      globalTeardown: '<rootDir>/test/helpers/secure-teardown.ts',
    },
  ],
};
