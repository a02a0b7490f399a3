#!/usr/bin/env node
// Compiles the five services and the server-side libs with SWC into dist/,
// keeping decorator metadata (Nest DI needs it) and rewriting the
// `@fleetwatch/*` path aliases into relative requires so dist/ runs on plain Node.
// Type-checking is a separate step (`npm run typecheck`): SWC only strips types.
//
// The build is compiled into tmp/ and then put in place of dist/ by renames, so dist/ is never half-written: a
// service started or a copy made from it meanwhile (integration files run side by side, and some build first)
// sees the old build or the new one. dist/apps/dashboard (Vite's, npm run build's second step) is kept.
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  readdirSync,
  statSync,
  mkdirSync,
  writeFileSync,
  rmSync,
  readFileSync,
  renameSync,
} from 'node:fs';
import { join, dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFile } from '@swc/core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = join(root, 'dist');
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
const staging = join(root, 'tmp', `dist-build-${tag}`);
const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8'));
const paths = tsconfig.compilerOptions.paths;

const SKIP_DIRS = new Set(['node_modules', 'dist']);
const isSource = (f) =>
  f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.spec.ts') && !f.endsWith('.int-spec.ts');

function walk(dir, acc = []) {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, acc);
    else if (isSource(p)) acc.push(p);
  }
  return acc;
}

const roots = [];
for (const group of ['apps', 'libs']) {
  for (const name of readdirSync(join(root, group))) {
    if (['dashboard', 'ui'].includes(name) || name.endsWith('-e2e')) continue;
    const src = join(root, group, name, 'src');
    try {
      if (statSync(src).isDirectory()) roots.push(src);
    } catch {
      /* no src */
    }
  }
}

const files = roots.flatMap((r) => walk(r));
const started = Date.now();
mkdirSync(staging, { recursive: true });

let done = 0;
const concurrency = 8;
async function compile(file) {
  const rel = relative(root, file);
  const target = join(staging, rel.replace(/\.ts$/, '.js'));
  const result = await transformFile(file, {
    sourceMaps: true,
    // Maps without the sources' text: stack traces need only the mappings, and every service parses its maps
    // at load (--enable-source-maps) — the embedded text was ~3 MB of each process's memory at rest.
    inlineSourcesContent: false,
    module: { type: 'commonjs', strict: false },
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
      keepClassNames: true,
      baseUrl: root,
      paths,
    },
  });
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, result.code + `\n//# sourceMappingURL=${target.split('/').pop()}.map\n`);
  if (result.map) writeFileSync(target + '.map', result.map);
  done++;
}
// A build that fails leaves nothing behind in tmp/.
process.on('exit', () => rmSync(staging, { recursive: true, force: true }));
const queue = [...files];
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (queue.length) await compile(queue.shift());
  }),
);
// What a copy of dist/ must hold to be whole (tests check their private copies against it).
writeFileSync(
  join(staging, 'build-info.json'),
  JSON.stringify({ files: done, builtAt: new Date().toISOString() }) + '\n',
);
// The dashboard's build is the other step's: carried over from the dist/ being replaced — whole or not at all (a copy
// that another build's swap or Vite's rewrite cut short is taken again, from the dist/ there is then).
carryDashboard();
swapIn(staging, out);

function carryDashboard() {
  const into = join(staging, 'apps/dashboard');
  for (let attempt = 1; attempt <= 5; attempt++) {
    rmSync(into, { recursive: true, force: true });
    try {
      if (!existsSync(join(out, 'apps/dashboard/index.html'))) return;
      cpSync(join(out, 'apps/dashboard'), into, { recursive: true });
      if (existsSync(join(into, 'index.html'))) return;
    } catch {
      /* dist/ replaced, or the dashboard rewritten, mid-copy: again */
    }
  }
  rmSync(into, { recursive: true, force: true });
  console.warn('build: dist/apps/dashboard was being replaced throughout; run npm run build to build it again');
}
console.log(`build: ${done} files compiled into dist/ in ${Date.now() - started} ms`);

/** Puts `next` in place of `current` by renames (dist/ is missing only between two renames); drops the old one. */
function swapIn(next, current) {
  for (let attempt = 0; ; attempt++) {
    const old = join(root, 'tmp', `dist-old-${tag}-${attempt}`);
    let moved = false;
    try {
      renameSync(current, old);
      moved = true;
    } catch (err) {
      if (err.code !== 'ENOENT') throw err; // no dist/ yet, or another build is between its two renames
    }
    try {
      renameSync(next, current);
      if (moved) rmSync(old, { recursive: true, force: true });
      return;
    } catch (err) {
      // Another build put its dist/ in place between our two renames: replace it again.
      if ((err.code === 'ENOTEMPTY' || err.code === 'EEXIST') && attempt < 20) {
        if (moved) rmSync(old, { recursive: true, force: true });
        continue;
      }
      // Anything else: the dist/ we moved away goes back (never leave no dist/ at all).
      if (moved)
        try {
          renameSync(old, current);
        } catch {
          /* another build's is there now */
        }
      throw err;
    }
  }
}
