import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// The layering rules of docs/architecture.md ("Code layout"), checked as lint errors: each probe
// imports across a forbidden boundary and must be refused.
const root = join(__dirname, '../..');
const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' };

const PROBES: [name: string, file: string, code: string, expected: RegExp | null][] = [
  [
    'contracts imports another lib',
    'libs/contracts/src/zz-probe-1.ts',
    "import { env } from '@fleetwatch/config';\nexport const x = env;\n",
    /can only depend on libs tagged with "type:contracts"/,
  ],
  [
    'domain imports messaging',
    'libs/domain/src/zz-probe-2.ts',
    "import { BusPublisher } from '@fleetwatch/messaging';\nexport const x = BusPublisher;\n",
    /can only depend on libs tagged with/,
  ],
  [
    'domain imports a database driver',
    'libs/domain/src/zz-probe-3.ts',
    "import { Client } from 'pg';\nexport const x = Client;\n",
    /stay free of frameworks/,
  ],
  [
    'the collector imports persistence',
    'apps/collector/src/zz-probe-4.ts',
    "import { UsersRepository } from '@fleetwatch/persistence';\nexport const x = UsersRepository;\n",
    /can not depend on libs tagged with "type:persistence"/,
  ],
  [
    'the dashboard imports messaging',
    'apps/dashboard/src/zz-probe-5.ts',
    "import { BusPublisher } from '@fleetwatch/messaging';\nexport const x = BusPublisher;\n",
    /can only depend on libs tagged with/,
  ],
  [
    'an app imports another app',
    'apps/aggregator/src/zz-probe-6.ts',
    "import { loadIngestConfig } from '../../status-ingest/src/config';\nexport const x = loadIngestConfig;\n",
    /cannot be imported by a relative or absolute path/,
  ],
  [
    'a lib is imported past its entry point',
    'apps/aggregator/src/zz-probe-7.ts',
    "import { LiveKeys } from '@fleetwatch/live-state/src/keys';\nexport const x = LiveKeys;\n",
    /.+/,
  ],
  [
    'a service touches Prisma',
    'apps/aggregator/src/zz-probe-8.service.ts',
    "import { Prisma } from '@prisma/client';\nexport const x = Prisma;\n",
    /Only repositories/,
  ],
  [
    'a watcher reaches past the ingest API (the bus)',
    'apps/docker-watcher/src/zz-probe-w1.ts',
    "import { BusPublisher } from '@fleetwatch/messaging';\nexport const x = BusPublisher;\n",
    /can only depend on libs tagged with "type:contracts", "type:domain", "type:config", "type:pusher"/,
  ],
  [
    'the push client imports persistence',
    'libs/pusher/src/zz-probe-w2.ts',
    "import { UsersRepository } from '@fleetwatch/persistence';\nexport const x = UsersRepository;\n",
    /can only depend on libs tagged with/,
  ],
  [
    '(allowed) an app uses domain and live-state',
    'apps/aggregator/src/zz-probe-9.ts',
    "import { consensusOf } from '@fleetwatch/domain';\nimport { LiveStateStore } from '@fleetwatch/live-state';\nexport const x = [consensusOf, LiveStateStore];\n",
    null,
  ],
  [
    '(allowed) the dashboard uses contracts',
    'apps/dashboard/src/zz-probe-10.ts',
    "import { TargetStatus } from '@fleetwatch/contracts';\nexport const x = TargetStatus;\n",
    null,
  ],
];

const found = new Map<string, string[]>();

beforeAll(() => {
  // The rule reads Nx's project graph; a fresh clone has none until Nx computes it.
  execFileSync('npx', ['nx', 'show', 'projects'], { cwd: root, env, stdio: 'ignore' });
  // Real files, linted in one ESLint run (its config loader needs real ESM, not Jest's VM).
  try {
    for (const [, file, code] of PROBES) writeFileSync(join(root, file), code);
    const r = spawnSync('npx', ['eslint', '--no-warn-ignored', '--format', 'json', ...PROBES.map((p) => p[1])], {
      cwd: root,
      env,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    const results = JSON.parse(r.stdout) as {
      filePath: string;
      messages: { ruleId: string | null; message: string }[];
    }[];
    for (const res of results) {
      const rel = res.filePath.slice(root.length + 1);
      found.set(
        rel,
        res.messages
          .filter((m) => m.ruleId === '@nx/enforce-module-boundaries' || m.ruleId === 'no-restricted-imports')
          .map((m) => m.message),
      );
    }
  } finally {
    for (const [, file] of PROBES) rmSync(join(root, file), { force: true });
  }
}, 180_000);

describe('module boundaries', () => {
  it.each(PROBES)('%s', (_name, file, _code, expected) => {
    const errors = found.get(file);
    expect(errors).toBeDefined();
    if (expected === null) expect(errors).toEqual([]);
    else expect((errors ?? []).join('\n')).toMatch(expected);
  });
});
