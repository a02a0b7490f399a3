'use strict';
// Preload (NODE_OPTIONS="--require …/time-sql.cjs") for a bench run of the services: in the aggregator only,
// times every pg Client.query from call to result (so queueing on the box counts, as it does for a commit),
// grouped by the statement's first words, plus event-loop delay, and appends a summary every 5 s to
// FW_TIME_SQL_FILE (default /tmp/time-sql.log). Shows whether a commit waits on round trips or on CPU. Bench only.
if (!process.argv[1] || !process.argv[1].includes('aggregator')) return;
const { appendFileSync } = require('node:fs');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const pg = require('pg');
const stats = Object.create(null);
const original = pg.Client.prototype.query;
pg.Client.prototype.query = function query(config, ...rest) {
  const text = typeof config === 'string' ? config : config && typeof config.text === 'string' ? config.text : '';
  const key = text.replace(/\s+/g, ' ').trim().slice(0, 50);
  const t = performance.now();
  const r = original.call(this, config, ...rest);
  if (r && typeof r.then === 'function')
    r.then(
      () => {
        const s = (stats[key] ??= { n: 0, ms: 0, max: 0 });
        const d = performance.now() - t;
        s.n++;
        s.ms += d;
        if (d > s.max) s.max = d;
      },
      () => {},
    );
  return r;
};
const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();
const file = process.env.FW_TIME_SQL_FILE || '/tmp/time-sql.log';
setInterval(() => {
  const rows = Object.entries(stats)
    .filter(([, s]) => s.n > 0)
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, 12)
    .map(
      ([k, s]) =>
        `  ${String(s.n).padStart(6)} avg ${(s.ms / s.n).toFixed(1).padStart(6)} max ${s.max.toFixed(0).padStart(5)}  ${k}`,
    );
  appendFileSync(
    file,
    `${new Date().toISOString()} loop delay p50 ${(h.percentile(50) / 1e6).toFixed(1)} p99 ${(h.percentile(99) / 1e6).toFixed(1)} max ${(h.max / 1e6).toFixed(0)} ms\n${rows.join('\n')}\n`,
  );
  for (const k in stats) delete stats[k];
  h.reset();
}, 5000).unref();
