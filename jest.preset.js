// Shared Jest settings: SWC transform (with legacy decorators and decorator
// metadata, without which Nest DI breaks) and the @fleetwatch/* aliases from
// tsconfig.base.json so tests import libs exactly as the code does.
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

const base = JSON.parse(readFileSync(join(__dirname, 'tsconfig.base.json'), 'utf8'));
const moduleNameMapper = {};
for (const [alias, [target]] of Object.entries(base.compilerOptions.paths)) {
  moduleNameMapper[`^${alias.replace('/', '\\/')}$`] = `<rootDir>/${target}`;
}

const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true, tsx: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, react: { runtime: 'automatic' } },
      target: 'es2022',
      keepClassNames: true,
    },
    module: { type: 'commonjs' },
  },
];

module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform: { '^.+\\.(t|j)sx?$': swc },
  moduleFileExtensions: ['ts', 'tsx', 'js', 'json'],
  moduleNameMapper,
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  // ESM-only packages SWC turns into CommonJS for Jest (plain Node 20.19+ requires them as they are).
  transformIgnorePatterns: [
    '/node_modules/(?!(@marcbachmann/cel-js|@kubernetes/client-node|openid-client|oauth4webapi|jose|jsonpath-plus)/)',
  ],
};
