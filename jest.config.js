// Three suites: `unit` (*.spec.ts, no servers, parallel), `integration`
// (*.int-spec.ts, real Postgres/Redis/RabbitMQ isolated per run by libs/testing) and
// `integration-alone` (*.alone.int-spec.ts: tests that must not share the broker).
const preset = require('./jest.preset');

module.exports = {
  // Per-project testTimeout is ignored by Jest; integration tests talk to real servers.
  testTimeout: 120000,
  projects: [
    {
      ...preset,
      displayName: 'unit',
      testMatch: ['<rootDir>/{apps,libs,tools,tests}/**/*.spec.ts'],
      testPathIgnorePatterns: [...preset.testPathIgnorePatterns, '/apps/dashboard/'],
    },
    {
      ...preset,
      displayName: 'integration',
      testMatch: ['<rootDir>/{apps,libs,tools,tests}/**/*.int-spec.ts'],
      testPathIgnorePatterns: [...preset.testPathIgnorePatterns, '\\.alone\\.int-spec\\.ts$'],
      globalSetup: '<rootDir>/libs/testing/src/jest/global-setup.ts',
      globalTeardown: '<rootDir>/libs/testing/src/jest/global-teardown.ts',
      testTimeout: 120000,
      slowTestThreshold: 30,
    },
    // Tests that disturb the whole broker (a resource alarm blocks every publisher on it):
    // `npm test` runs them in a step of their own, after the others, with nothing beside them.
    {
      ...preset,
      displayName: 'integration-alone',
      testMatch: ['<rootDir>/{apps,libs,tools,tests}/**/*.alone.int-spec.ts'],
      globalSetup: '<rootDir>/libs/testing/src/jest/global-setup.ts',
      globalTeardown: '<rootDir>/libs/testing/src/jest/global-teardown.ts',
      testTimeout: 180000,
      slowTestThreshold: 60,
    },
  ],
};
