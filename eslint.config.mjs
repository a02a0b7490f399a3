import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// Module boundaries (docs/architecture.md, "Code layout") as errors:
//  - contracts imports no other lib; the dashboard uses it;
//  - domain is pure (contracts only);
//  - the dashboard imports only contracts and ui;
//  - the collector never imports persistence (it must run with the DB away);
//  - apps never import apps (Nx forbids it on its own).

// Tests may also use libs/testing (server resolution, isolation, TcpProxy).
function boundaries(forTests) {
  const withTesting = (tags) => (forTests ? [...tags, 'type:testing'] : tags);
  return {
    enforceBuildableLibDependency: false,
    banTransitiveDependencies: true,
    allow: [],
    depConstraints: [
      { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: withTesting(['type:contracts']) },
      { sourceTag: 'type:domain', onlyDependOnLibsWithTags: withTesting(['type:contracts', 'type:domain']) },
      { sourceTag: 'type:config', onlyDependOnLibsWithTags: withTesting(['type:contracts']) },
      {
        sourceTag: 'type:observability',
        onlyDependOnLibsWithTags: withTesting(['type:contracts', 'type:config', 'type:domain']),
      },
      {
        sourceTag: 'type:messaging',
        onlyDependOnLibsWithTags: withTesting(['type:contracts', 'type:config', 'type:observability']),
      },
      // The push client of outside daemons (watchers): the contract and nothing of the site.
      { sourceTag: 'type:pusher', onlyDependOnLibsWithTags: withTesting(['type:contracts', 'type:config']) },
      { sourceTag: 'type:persistence', onlyDependOnLibsWithTags: withTesting(['type:contracts', 'type:domain']) },
      { sourceTag: 'type:live-state', onlyDependOnLibsWithTags: withTesting(['type:contracts', 'type:domain']) },
      {
        sourceTag: 'type:testing',
        onlyDependOnLibsWithTags: withTesting([
          'type:contracts',
          'type:config',
          'type:messaging',
          'type:persistence',
          'type:live-state',
        ]),
      },
      { sourceTag: 'type:ui', onlyDependOnLibsWithTags: withTesting(['type:contracts', 'type:ui']) },
      { sourceTag: 'scope:web', onlyDependOnLibsWithTags: withTesting(['scope:web', 'scope:shared']) },
      { sourceTag: 'scope:collector', notDependOnLibsWithTags: ['type:persistence'] },
      {
        sourceTag: 'type:app',
        onlyDependOnLibsWithTags: withTesting([
          'type:contracts',
          'type:domain',
          'type:config',
          'type:observability',
          'type:messaging',
          'type:persistence',
          'type:live-state',
          'type:ui',
          'type:pusher',
        ]),
      },
      // The watchers are outside daemons (SPEC §6): they reach the site only through the ingest's HTTP API.
      {
        sourceTag: 'scope:watcher',
        onlyDependOnLibsWithTags: withTesting(['type:contracts', 'type:domain', 'type:config', 'type:pusher']),
      },
    ],
  };
}

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    ignores: [
      '**/dist',
      '**/node_modules',
      '**/generated',
      '**/.nx',
      'tmp/**',
      '**/vite.config.*',
      '**/*.js',
      '**/*.mjs',
      '**/*.cjs',
    ],
  },
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', boundaries(false)],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.property.name='only'][callee.object.name=/^(it|describe|test)$/]",
          message: 'Focused tests silence the rest.',
        },
      ],
    },
  },
  {
    // Test-support modules (imported by tests only) may use libs/testing too.
    files: ['**/*.spec.ts', '**/*.int-spec.ts', '**/*.spec.tsx', '**/int-spec.helpers.ts', '**/*.int-helpers.ts'],
    rules: { '@nx/enforce-module-boundaries': ['error', boundaries(true)] },
  },
  {
    files: ['libs/contracts/src/**/*.ts', 'libs/domain/src/**/*.ts', 'libs/alerting/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@nestjs/*', '@prisma/*', 'amqplib', 'amqp-connection-manager', 'ioredis', 'pg', 'fastify'],
              message:
                'contracts and domain stay free of frameworks, ORMs and transports (the dashboard uses contracts).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['apps/**/src/**/*.ts'],
    // Test-support modules (*.int-helpers.ts) may open a pg client, as the specs do.
    ignores: ['**/*.repository.ts', '**/*.spec.ts', '**/*.int-spec.ts', '**/*.int-helpers.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@prisma/*', 'pg'],
              message: 'Only repositories (libs/persistence or *.repository.ts) touch the database.',
            },
          ],
        },
      ],
    },
  },
];
