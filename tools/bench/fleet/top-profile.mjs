#!/usr/bin/env node
// Summarises V8 .cpuprofile files (node --cpu-prof): self time by function and by package / file,
// idle and GC apart, over the whole profile or from --from seconds on (skips start-up).
//
//   node tools/bench/fleet/top-profile.mjs FILE.cpuprofile [--top 30] [--from 5] [--to 9] [--timeline]
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv.splice(i, 2)[1]) : dflt;
};
const top = opt('top', 30);
const from = opt('from', 0);
const to = opt('to', Infinity);
const timeline = argv.includes('--timeline') && argv.splice(argv.indexOf('--timeline'), 1);
for (const file of argv) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  if (timeline) {
    // Busy (not idle) milliseconds per second of the profile.
    const busy = [];
    let at = prof.startTime;
    for (let i = 0; i < prof.samples.length; i++) {
      at += prof.timeDeltas[i];
      const sec = Math.floor((at - prof.startTime) / 1e6);
      if (nodes.get(prof.samples[i]).callFrame.functionName !== '(idle)')
        busy[sec] = (busy[sec] ?? 0) + (prof.timeDeltas[i + 1] ?? 0) / 1000;
    }
    console.log(Array.from(busy, (b, sec) => `${sec}s:${Math.round(b ?? 0)}`).join(' '));
  }
  const self = new Map();
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i];
    const s = (t - prof.startTime) / 1e6;
    if (s < from || s >= to) continue;
    const dt = prof.timeDeltas[i + 1] ?? 0;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  }
  const byFn = new Map();
  const byPkg = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const { callFrame: f } = nodes.get(id);
    total += us;
    const url = f.url.replace(/^file:\/\//, '');
    const fn = `${f.functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + us);
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    const pkg = m ? m[1] : url.startsWith('node:') ? url : url ? url.split('/').slice(-2).join('/') : f.functionName;
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + us);
  }
  const show = (title, map) => {
    console.log(`\n${title}`);
    for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %  ${k}`);
  };
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
  show('self time by package / file', byPkg);
  show('self time by function', byFn);
}
