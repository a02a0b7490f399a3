#!/usr/bin/env node
// Status-change subscription delivery (issue 18): the aggregator's SubscriptionDeliveryWorker as it runs in the
// service (the providers' settings: 20 claimed a round, at most 10 of one subscription), on a throwaway database,
// sending to a receiver in this process that answers 204 after --latency ms (the first subscription's after --slow
// ms when given: one slow webhook among fast ones).
//
//   npm run bench:subscriptions -- [--subscriptions 1 --backlog 5000
//       --latency 0 --slow 0 --workers 1 --tree <folder holding a built dist/> --json]
//
// A mass outage: --backlog deliveries queued per subscription at once (what a commit of status changes queues,
// one row per (subscription, event)), then the worker(s) — --workers replicas, each its own worker and pool —
// drain them. Measured: deliveries a second until every one is delivered, the first and the last quarter apart
// (a claim that grows with the backlog shows as a slower start), and the time per claim query.
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from '../lib/args.mjs';
import { codeVersion } from '../lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const args = parseArgs(process.argv.slice(2), {
  subscriptions: 1,
  backlog: 5000,
  latency: 0,
  /** The first subscription's receiver latency (ms); 0: as the others. Its deliveries are left out of the rates. */
  slow: 0,
  workers: 1,
  json: false,
  tree: root,
});
const dist = (p) => join(resolve(args.tree), 'dist', p);
if (!existsSync(dist('apps/aggregator/src/alerts/subscriptions/subscription-delivery.worker.js')))
  throw new Error('dist/ is missing: run `node tools/build/build.mjs` first');

const P = require(dist('libs/persistence/src/index.js'));
const { DEFAULT_RETRY_POLICY } = require(dist('libs/alerting/src/index.js'));
const { createIsolatedDatabase } = require(dist('libs/testing/src/index.js'));
const { SubscriptionDeliveryWorker } = require(
  dist('apps/aggregator/src/alerts/subscriptions/subscription-delivery.worker.js'),
);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// The service's settings (subscriptions.providers.ts); the worker's own default cap (half the batch).
const BATCH = 20;
const PER_SUBSCRIPTION = Math.max(1, Math.floor(BATCH / 2));
const KEY = randomBytes(32).toString('hex');

let received = 0;
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received++;
    const answer = () => {
      res.statusCode = 204;
      res.end();
    };
    const latency = args.slow > 0 && req.url === '/hook/0' ? args.slow : args.latency;
    if (latency > 0) setTimeout(answer, latency);
    else answer();
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const urlOf = (i) => `http://127.0.0.1:${receiver.address().port}/hook/${i}`;

const db = await createIsolatedDatabase();
const pools = [];
// Ctrl-C: the throwaway database goes too.
process.once('SIGINT', () => {
  console.error('interrupted: dropping the bench database');
  void db.dispose().finally(() => process.exit(130));
});
try {
  const setup = P.createSqlPool(db.databaseUrl, { max: 2 });
  pools.push(setup);
  const sealer = P.SecretSealer.fromText(KEY);
  const subs = [];
  for (let i = 0; i < args.subscriptions; i++) {
    const id = randomUUID();
    subs.push(id);
    await setup.query(
      `INSERT INTO status_subscriptions (id, name, spec, secret, version) VALUES ($1, $2, $3::jsonb, $4, 1)`,
      [
        id,
        `bench ${i}`,
        JSON.stringify({ name: `bench ${i}`, url: urlOf(i), enabled: true }),
        sealer.seal(`secret-${i}-0123456789`, P.subscriptionSecretContext(id)),
      ],
    );
  }
  const queue = new P.SubscriptionDeliveriesRepository(setup);
  // With --slow, the first subscription's deliveries are not waited for: the figures are the others'.
  const measured = args.slow > 0 ? subs.slice(1) : subs;
  if (measured.length === 0) throw new Error('--slow needs at least 2 --subscriptions');
  const total = measured.length * args.backlog;
  for (const id of subs)
    for (let from = 0; from < args.backlog; from += 1000) {
      const rows = [];
      for (let k = from; k < Math.min(args.backlog, from + 1000); k++) {
        const eventId = String(k + 1);
        rows.push({
          subscriptionId: id,
          eventId,
          targetId: `instance:bench-${k}`,
          body: JSON.stringify({ version: '1', type: 'status.changed', eventId, subscriptionId: id, to: 'DOWN' }),
        });
      }
      await queue.enqueue(rows);
    }

  // The service's settings (subscriptions.providers.ts); each worker its own pool, as each replica has.
  const claimMs = [];
  const workers = [];
  for (let w = 0; w < args.workers; w++) {
    const pool = P.createSqlPool(db.databaseUrl, { max: 4 });
    pools.push(pool);
    const deliveries = new P.SubscriptionDeliveriesRepository(pool);
    const claimDue = deliveries.claimDue.bind(deliveries);
    deliveries.claimDue = async (...a) => {
      const t = performance.now();
      try {
        return await claimDue(...a);
      } finally {
        claimMs.push(performance.now() - t);
      }
    };
    workers.push(
      new SubscriptionDeliveryWorker(
        deliveries,
        new P.SubscriptionsRepository(pool),
        sealer,
        { warn: (o, m) => console.error('warn', m, JSON.stringify(o)), info: () => undefined },
        {
          owner: `bench-${w}`,
          policy: DEFAULT_RETRY_POLICY,
          http: { timeoutMs: 10_000, maxResponseBytes: 4096, maxRedirects: 3 },
          leaseMs: 60_000,
          pollMs: 1000,
          batch: BATCH,
          retentionMs: 7 * 86_400_000,
        },
      ),
    );
  }

  const load = loadavg()[0];
  const t0 = performance.now();
  const marks = [];
  for (const w of workers) w.start();
  const quarter = Math.ceil(total / 4);
  let next = quarter;
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    const { rows } = await setup.query(
      `SELECT count(*)::int AS n FROM subscription_deliveries WHERE state <> 'pending' AND subscription_id::text = ANY($1::text[])`,
      [measured],
    );
    const done = rows[0].n;
    while (done >= next && next <= total) {
      marks.push({ n: next, t: performance.now() - t0 });
      next += quarter;
    }
    if (done >= total) break;
    if (Date.now() > deadline) throw new Error(`only ${done} of ${total} finished in 30 minutes`);
    await sleep(50);
  }
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(workers.map((w) => w.stop()));
  const { rows: states } = await setup.query(
    `SELECT state, count(*)::int AS n FROM subscription_deliveries GROUP BY state ORDER BY state`,
  );
  const q = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  // A mark at each quarter of the total reached, and one at the end (a total not a multiple of 4): the rate of the
  // first stretch and of the last.
  if (marks.at(-1)?.n !== total) marks.push({ n: total, t: seconds * 1000 });
  // Null for a stretch shorter than the 50 ms poll (too few deliveries to say).
  const rate = (from, to) => (to.t - from.t < 50 ? null : (to.n - from.n) / ((to.t - from.t) / 1000));
  const firstQuarter = rate({ n: 0, t: 0 }, marks[0]);
  const lastQuarter = rate(marks.at(-2) ?? { n: 0, t: 0 }, marks.at(-1));
  const result = {
    settings: { ...args, batch: BATCH, perSubscription: PER_SUBSCRIPTION, cores: cpus().length, load1: load },
    code: codeVersion(
      resolve(args.tree),
      dist('apps/aggregator/src/alerts/subscriptions/subscription-delivery.worker.js'),
    ),
    deliveries: total,
    received,
    states: Object.fromEntries(states.map((r) => [r.state, r.n])),
    seconds: Number(seconds.toFixed(2)),
    perSecond: Math.round(total / seconds),
    firstQuarterPerSecond: firstQuarter === null ? null : Math.round(firstQuarter),
    lastQuarterPerSecond: lastQuarter === null ? null : Math.round(lastQuarter),
    claimMs: {
      n: claimMs.length,
      median: Number(q(claimMs, 0.5).toFixed(1)),
      p95: Number(q(claimMs, 0.95).toFixed(1)),
    },
  };
  if (args.json) console.log(JSON.stringify(result));
  else {
    console.log(`subscription delivery bench — ${JSON.stringify(result.settings)} (${JSON.stringify(result.code)})`);
    console.log(
      `  ${total} deliveries (${args.subscriptions} subscription(s) × ${args.backlog}) in ${result.seconds} s: ${result.perSecond}/s ` +
        `(first quarter ${result.firstQuarterPerSecond}/s, last ${result.lastQuarterPerSecond}/s); states ${JSON.stringify(result.states)}; received ${received}`,
    );
    console.log(
      `  claim query: median ${result.claimMs.median} ms, p95 ${result.claimMs.p95} ms over ${result.claimMs.n} claims`,
    );
  }
} finally {
  for (const p of pools) await p.end().catch(() => undefined);
  await db.dispose().catch(() => undefined);
  receiver.close();
}
