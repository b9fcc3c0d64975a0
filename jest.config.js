/**
 * Unit tests of pure logic (no servers), integration tests against real servers, the fault
 * tests (test/faults), which drive the built CLI in child processes and inject faults, and the
 * secure tests (test/secure) against a second, secured Kafka and Cassandra (infra/secure.sh),
 * started by that project's global setup and stopped by its teardown.
 */
// Type-checking is tsc's job (make lint); jest only transpiles (isolatedModules in tsconfig.json).
const tsJest = ['ts-jest', {}];

/**
 * The fault projects kill processes and (faults-servers) stop the shared Kafka and Cassandra, and
 * the secure project starts and stops servers of its own, so they run only when named: `npx jest --selectProjects faults` (make test and make test-faults do,
 * one project at a time, --runInBand). A bare `npx jest` runs unit and integration only.
 */
function selectedProjects() {
  const selected = [];
  const argv = process.argv;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith('--selectProjects=')) selected.push(...arg.slice('--selectProjects='.length).split(','));
    else if (arg === '--selectProjects') {
      for (let j = i + 1; j < argv.length && !argv[j].startsWith('-'); j++) selected.push(argv[j]);
    }
  }
  return selected;
}
const selected = selectedProjects();

const faultProjects = [
  {
    displayName: 'faults',
    testEnvironment: 'node',
    transform: { '^.+\\.ts$': tsJest },
    testMatch: ['<rootDir>/test/faults/*.test.ts'],
    setupFiles: ['<rootDir>/test/helpers/kafkajs-codecs.ts'],
    globalSetup: '<rootDir>/test/faults/global-setup.ts',
  },
  {
    // Stops and starts the shared servers: run last, alone.
    displayName: 'faults-servers',
    testEnvironment: 'node',
    transform: { '^.+\\.ts$': tsJest },
    testMatch: ['<rootDir>/test/faults/servers/*.test.ts'],
    setupFiles: ['<rootDir>/test/helpers/kafkajs-codecs.ts'],
    globalSetup: '<rootDir>/test/faults/global-setup.ts',
  },
  {
    // Starts its own secured servers and stops them at its end: run in its own jest run.
    displayName: 'secure',
    testEnvironment: 'node',
    transform: { '^.+\\.ts$': tsJest },
    testMatch: ['<rootDir>/test/secure/**/*.test.ts'],
    setupFiles: ['<rootDir>/test/helpers/kafkajs-codecs.ts'],
    globalSetup: '<rootDir>/test/helpers/secure-setup.ts',
    globalTeardown: '<rootDir>/test/helpers/secure-teardown.ts',
  },
].filter((p) => selected.includes(p.displayName));

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
      setupFiles: ['<rootDir>/test/helpers/kafkajs-codecs.ts'],
      // Every API answer a test fetches is checked against the OpenAPI document.
      setupFilesAfterEnv: ['<rootDir>/test/helpers/openapi-setup.ts'],
    },
    ...faultProjects,
  ],
};
