#!/usr/bin/env node
// Config as code: how long sync-orchestrator's parse and validation of one YAML document takes
// (`parseConfigDocument`: YAML, duplicate keys, every check through the contract), by the number of checks in it.
// It runs on the configuration owner's event loop, so its time is how long the owner answers nothing else (and
// sends no AMQP heartbeat: ~10 s silent and the broker closes the connection).
//
//   node tools/build/build.mjs && node tools/bench/checks/yaml-parse.mjs [--checks 1000,10000,30000] [--repeats 3]
//       [--dist DIR]   (another build's dist/, e.g. a worktree's, to compare two builds in one sitting)
import { loadavg } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { parseArgs } from '../lib/args.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const args = parseArgs(process.argv.slice(2), { checks: '1000,10000,30000', repeats: 3, dist: root });
const require = createRequire(import.meta.url);
const { parseConfigDocument } = require(
  join(resolve(args.dist), 'dist/apps/sync-orchestrator/src/config/config-yaml.js'),
);

/** N tcp checks as an export writes them (paused, one a day: the shape of a large site's file). */
function documentOf(n) {
  let text = 'checks:\n';
  for (let i = 0; i < n; i++)
    text += `  bulk-${String(i).padStart(6, '0')}:\n    type: tcp\n    host: 127.0.0.1\n    port: 39999\n    intervalSeconds: 86400\n    paused: true\n`;
  return text;
}

console.log(
  `yaml-parse: dist ${resolve(args.dist)}, repeats ${args.repeats}, node ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log('checks  bytes        best ms  median ms  µs a check');
for (const n of String(args.checks).split(',').map(Number)) {
  const text = documentOf(n);
  const times = [];
  for (let r = 0; r < Number(args.repeats); r++) {
    const t = process.hrtime.bigint();
    const { checks } = parseConfigDocument(text);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (checks.length !== n) throw new Error(`parsed ${checks.length} checks of ${n}`);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(
    `${String(n).padStart(6)}  ${String(Buffer.byteLength(text)).padStart(9)}  ${times[0].toFixed(0).padStart(9)}  ${median.toFixed(0).padStart(9)}  ${((median * 1000) / n).toFixed(0).padStart(10)}`,
  );
}
