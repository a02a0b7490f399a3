// `npm run bench:targets-list` / `bench:status-summary` / `bench:hosts-list`: the gateway benchmarks of this folder
// (list.bench.ts, status-summary.bench.ts, hosts-list.bench.ts), with the integration suite's servers set-up
// (libs/testing: a throwaway database, vhost and Redis prefix). Not among `npm test`'s projects.
const preset = require('../../../jest.preset');

module.exports = {
  ...preset,
  displayName: 'bench',
  testMatch: ['<rootDir>/tools/bench/targets/*.bench.ts'],
  globalSetup: '<rootDir>/libs/testing/src/jest/global-setup.ts',
  globalTeardown: '<rootDir>/libs/testing/src/jest/global-teardown.ts',
  testTimeout: 600000,
};
