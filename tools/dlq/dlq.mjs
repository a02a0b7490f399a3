#!/usr/bin/env node
// `npm run dlq -- list | show ID | replay ID | replay --all [--queue Q] [--json]`
// Thin launcher for libs/messaging/src/dead-letters/dlq-cli.ts (runbook:
// docs/runbooks/dead-letters.md). In a checkout it runs the TypeScript source,
// compiled on the fly with SWC (always current, no build step); where only dist/
// is deployed it runs the built copy.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(join(root, 'package.json'));
const source = join(root, 'libs/messaging/src/dead-letters/dlq-cli.ts');
const built = join(root, 'dist/libs/messaging/src/dead-letters/dlq-cli.js');

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
