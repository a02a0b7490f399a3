#!/usr/bin/env node
// `node tools/deploy/rabbitmq-definitions.mjs [--vhost NAME] [--out FILE | --stdout]`
// Writes deploy/rabbitmq/definitions.json from the topology the services declare at boot
// (tools/deploy/rabbitmq-definitions.ts; how to load it: deploy/rabbitmq/README.md). Runs the
// TypeScript source, compiled on the fly with SWC (a checkout with dev dependencies).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { registerTypeScript, require, root, swcAvailable } from '../lib/typescript-loader.mjs';

if (!existsSync(join(root, 'node_modules')) || !swcAvailable()) {
  process.stderr.write('rabbitmq-definitions: needs a checkout with dev dependencies (npm ci)\n');
  process.exit(2);
}
registerTypeScript();
const { runDefinitionsCli } = require(join(root, 'tools/deploy/rabbitmq-definitions.ts'));
process.exitCode = runDefinitionsCli(process.argv.slice(2), join(root, 'deploy/rabbitmq/definitions.json'));
