#!/usr/bin/env node
// Builds the dashboard with Vite into dist/apps/dashboard, which the gateway serves at /.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const app = join(root, 'apps/dashboard');
if (!existsSync(join(app, 'vite.config.mts'))) process.exit(0);
const started = Date.now();
const r = spawnSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], {
  cwd: app,
  stdio: 'inherit',
});
if (r.status !== 0) process.exit(r.status ?? 1);
console.log(`build: dashboard built into dist/apps/dashboard in ${Date.now() - started} ms`);
