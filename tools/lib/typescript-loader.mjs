// Runs the repository's TypeScript from a .mjs launcher: `.ts` files compiled on the fly with SWC (the tsconfig
// paths resolved), for tools that run in a checkout with dev dependencies (tools/dlq, tools/deploy).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** `require` from the root (CommonJS: the compiled TypeScript is loaded with it). */
export const require = createRequire(join(root, 'package.json'));

/** Whether SWC is installed (a checkout with dev dependencies). */
export function swcAvailable() {
  try {
    require.resolve('@swc/core');
    return true;
  } catch {
    return false;
  }
}

/** Makes `require` of a `.ts` file compile it with SWC. */
export function registerTypeScript() {
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
