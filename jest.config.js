// Four suites: `unit` (*.spec.ts, no servers, parallel), `integration` (*.int-spec.ts, real
// Postgres/Redis/RabbitMQ isolated per run by libs/testing; `npm test` runs three files at a time,
// each jest worker on a database, vhost and key prefix of its own), `integration-serial` (the
// int-specs below, one at a time after those) and `integration-alone` (*.alone.int-spec.ts:
// tests that must not share the broker).
const preset = require('./jest.preset');

// Integration files that must not run beside another, and why.
const SERIAL_INTEGRATION = [
  // `npm start` builds the services and the dashboard (Vite rewrites dist/apps/dashboard in place), which e2e specs copy.
  'tests/e2e/boot.int-spec.ts',
];
const escape = (path) => path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * An integration project: real servers, one database, vhost and key prefix per run (global setup) and per jest
 * worker (worker-env.ts: files running side by side never share them).
 */
function integrationProject(displayName, settings) {
  return {
    ...preset,
    displayName,
    globalSetup: '<rootDir>/libs/testing/src/jest/global-setup.ts',
    globalTeardown: '<rootDir>/libs/testing/src/jest/global-teardown.ts',
    setupFiles: ['<rootDir>/libs/testing/src/jest/worker-env.ts'],
    testTimeout: 120000,
    slowTestThreshold: 30,
    ...settings,
  };
}

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
    integrationProject('integration', {
      testMatch: ['<rootDir>/{apps,libs,tools,tests}/**/*.int-spec.ts'],
      testPathIgnorePatterns: [
        ...preset.testPathIgnorePatterns,
        '\\.alone\\.int-spec\\.ts$',
        ...SERIAL_INTEGRATION.map((f) => `/${escape(f)}$`),
      ],
    }),
    integrationProject('integration-serial', { testMatch: SERIAL_INTEGRATION.map((f) => `<rootDir>/${f}`) }),
    // Tests that disturb the whole broker (a resource alarm blocks every publisher on it):
    // `npm test` runs them in a step of their own, after the others, with nothing beside them.
    integrationProject('integration-alone', {
      testMatch: ['<rootDir>/{apps,libs,tools,tests}/**/*.alone.int-spec.ts'],
      testTimeout: 180000,
      slowTestThreshold: 60,
    }),
  ],
};
