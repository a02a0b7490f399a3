// Preload for the aggregator under tools/bench/aggregator/drain.mjs: counts the SQL
// statements the process sends through pg (Client.query), grouped by their first words,
// and writes the tally to FW_BENCH_SQL_COUNT_FILE when the process exits. Bench only.
'use strict';
const { writeFileSync } = require('node:fs');
const pg = require('pg');

const counts = Object.create(null);
let total = 0;
const original = pg.Client.prototype.query;
pg.Client.prototype.query = function query(config, ...rest) {
  const text = typeof config === 'string' ? config : config && typeof config.text === 'string' ? config.text : '';
  const key = text.replace(/\s+/g, ' ').trim().replace(/\$\d+/g, '$').slice(0, 90);
  counts[key] = (counts[key] ?? 0) + 1;
  total++;
  return original.call(this, config, ...rest);
};

const file = process.env.FW_BENCH_SQL_COUNT_FILE;
if (file) process.on('exit', () => writeFileSync(file, JSON.stringify({ total, counts })));
