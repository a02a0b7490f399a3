#!/usr/bin/env node
// `node tools/deploy/rabbitmq-definitions.mjs [--vhost NAME] [--out FILE | --stdout]`
// Writes deploy/rabbitmq/definitions.json from the topology the services declare at boot
// (tools/deploy/rabbitmq-definitions.ts; how to load it: deploy/rabbitmq/README.md). Runs the
// TypeScript source, compiled on the fly with SWC (a checkout with dev dependencies).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(join(root, 'package.json'));

function swcAvailable() {
  try {
    require.resolve('@swc/core');
    return true;
  } catch {
    return false;
  }
}

function registerTypeScript() {
  const Module = require('node:module');
  const { transformSync } = require('@swc/core');
  const { paths } = JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')).compilerOptions;
  Module._extensions['.ts'] = (module, filename) => {
    const { code } = transformSync(readFileSync(filename, 'utf8'), {
      filename,
      module: { type: 'commonjs' },
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        target: 'es2022',
        baseUrl: root,
        paths,
      },
    });
    module._compile(code, filename);
  };
}

if (!existsSync(join(root, 'node_modules')) || !swcAvailable()) {
  process.stderr.write('rabbitmq-definitions: needs a checkout with dev dependencies (npm ci)\n');
  process.exit(2);
}
registerTypeScript();
const { runDefinitionsCli } = require(join(root, 'tools/deploy/rabbitmq-definitions.ts'));
process.exitCode = runDefinitionsCli(process.argv.slice(2), join(root, 'deploy/rabbitmq/definitions.json'));
