// Two suites: `unit` (*.spec.ts, no servers, parallel) and `integration`
// (*.int-spec.ts, real Postgres/Redis/RabbitMQ isolated per run by libs/testing).
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
      globalSetup: '<rootDir>/libs/testing/src/jest/global-setup.ts',
      globalTeardown: '<rootDir>/libs/testing/src/jest/global-teardown.ts',
      testTimeout: 120000,
      slowTestThreshold: 30,
    },
  ],
};
