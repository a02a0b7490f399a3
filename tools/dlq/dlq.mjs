#!/usr/bin/env node
// `npm run dlq -- list | show ID | replay ID | replay --all [--queue Q] [--json]`
// Thin launcher for libs/messaging/src/dead-letters/dlq-cli.ts (runbook:
// docs/runbooks/dead-letters.md). In a checkout it runs the TypeScript source,
// compiled on the fly with SWC (always current, no build step); where only dist/
// is deployed it runs the built copy.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { registerTypeScript, require, root, swcAvailable } from '../lib/typescript-loader.mjs';

const source = join(root, 'libs/messaging/src/dead-letters/dlq-cli.ts');
const built = join(root, 'dist/libs/messaging/src/dead-letters/dlq-cli.js');

let entry;
if (existsSync(source) && swcAvailable()) {
  registerTypeScript();
  entry = source;
} else if (existsSync(built)) {
  entry = built;
} else {
  process.stderr.write('dlq: neither the source nor dist/ (npm run build) is here\n');
  process.exit(2);
}
const { runDlqCli } = require(entry);
process.exitCode = await runDlqCli(process.argv.slice(2));
