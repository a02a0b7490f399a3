#!/usr/bin/env node
// The deploy step (SPEC §4): ensure the database exists, rebuild an index a failed CONCURRENTLY build left INVALID
// (invalid-indexes.mjs), then `prisma migrate deploy`.
// Run once per deployment before the services start (`npm run db:migrate`); services
// never migrate at boot. DATABASE_URL defaults to the SPEC §10 local database.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DATABASE_URL, ensureDatabase, redact } from './ensure-database.mjs';
import { concurrentIndexes, rebuildInvalidIndexes } from './invalid-indexes.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const url = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;

try {
  const created = await ensureDatabase(url);
  console.log(`db: ${created ? 'created' : 'found'} database ${redact(url)}`);
} catch (err) {
  console.error(`db: cannot ensure database ${redact(url)}: ${err.message}`);
  process.exit(1);
}

try {
  await rebuildInvalidIndexes(url, concurrentIndexes(join(root, 'libs/persistence/prisma/migrations')));
} catch (err) {
  console.error(`db: cannot rebuild an INVALID index in ${redact(url)}: ${err.message}`);
  process.exit(1);
}

const cli = createRequire(join(root, 'package.json')).resolve('prisma/build/index.js');
const child = spawn(process.execPath, [cli, 'migrate', 'deploy', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, DATABASE_URL: url, CHECKPOINT_DISABLE: '1' },
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
