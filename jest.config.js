/** Two projects: unit tests of pure logic (no servers) and integration tests against real servers. */
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
  ],
};
