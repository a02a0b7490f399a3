#!/usr/bin/env node
// What a confirmed publish costs RabbitMQ (issue 14): broker CPU per message for the ways a publisher can
// route to quorum queues — one queue or eight, the default exchange or a topic exchange, `mandatory`, headers —
// with a given number of publishes in flight. Nothing consumes; the queues are declared, purged and deleted here.
//
//   node tools/bench/bus/publish-cost.mjs [--messages 15000] [--in-flight 8] [--bytes 1500] [--rounds 2]
//       [--variants 1q,8q,8q-topic,8q-mand,8q-hdr,8q-topic-mand-hdr] [--url amqp://guest:guest@127.0.0.1]
//
// A variant names its parts: `1q`/`8q` (queues, published round robin), `topic` (through a topic exchange
// bound per queue, as the observation shards are), `mand` (mandatory), `hdr` (ingest's properties and headers).
// Broker CPU is the beam.smp process's user + system time from /proc over the run (other work on the box counts
// too: run it on a quiet box, alternate variants, compare within one sitting).
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { cpuSeconds, pidsOf } from '../lib/procs.mjs';
import { parseArgs } from '../lib/args.mjs';

const require = createRequire(import.meta.url);
const amqp = require('amqplib');

const args = parseArgs(process.argv.slice(2), {
  messages: 15_000,
  'in-flight': 8,
  bytes: 1500,
  rounds: 2,
  variants: '1q,8q,8q-topic,8q-mand,8q-hdr,8q-topic-mand-hdr',
  url: 'amqp://guest:guest@127.0.0.1',
});

const beam = pidsOf(/beam\.smp/)[0];
if (!beam) throw new Error('no beam.smp process found: is RabbitMQ running on this host?');

async function run(connection, variant) {
  const ch = await connection.createConfirmChannel();
  const tag = randomUUID().slice(0, 8);
  const exchange = `fw-bench-publish-cost-${tag}`;
  const queues = [];
  try {
    const topic = variant.includes('topic');
    if (topic) await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    const n = variant.startsWith('8q') ? 8 : 1;
    for (let i = 0; i < n; i++) {
      const q = `${exchange}.shard-0${i}`;
      await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      if (topic) await ch.bindQueue(q, exchange, `event.status.update.shard-0${i}`);
      queues.push(q);
    }
    const body = Buffer.alloc(args.bytes, 'x');
    const options = { persistent: true, contentType: 'application/json', mandatory: variant.includes('mand') };
    if (variant.includes('hdr'))
      Object.assign(options, {
        type: 'status.update.batch',
        timestamp: Math.floor(Date.now() / 1000),
        appId: 'status-ingest',
        headers: { 'x-fleetwatch-schema-version': 1, 'x-fleetwatch-type': 'status.update.batch' },
      });
    let sent = 0;
    let done = 0;
    const cpu0 = cpuSeconds(beam);
    const t0 = performance.now();
    await new Promise((resolve, reject) => {
      const pump = () => {
        while (sent < args.messages && sent - done < args['in-flight']) {
          const i = sent++ % n;
          const confirmed = (err) => {
            if (err) return reject(err);
            if (++done === args.messages) resolve();
            else pump();
          };
          const o = { ...options, messageId: randomUUID() };
          if (topic) ch.publish(exchange, `event.status.update.shard-0${i}`, body, o, confirmed);
          else ch.sendToQueue(queues[i], body, o, confirmed);
        }
      };
      pump();
    });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(beam) - cpu0;
    return {
      variant,
      perSecond: Math.round(args.messages / seconds),
      brokerMsPerMessage: (1000 * cpu) / args.messages,
    };
  } finally {
    for (const q of queues) await ch.deleteQueue(q).catch(() => undefined);
    if (variant.includes('topic')) await ch.deleteExchange(exchange).catch(() => undefined);
    await ch.close().catch(() => undefined);
  }
}

const connection = await amqp.connect(args.url);
try {
  console.log(
    `settings: ${JSON.stringify({ messages: args.messages, inFlight: args['in-flight'], bytes: args.bytes, rounds: args.rounds, queueType: 'quorum' })}`,
  );
  for (let round = 1; round <= args.rounds; round++)
    for (const variant of String(args.variants).split(',')) {
      const r = await run(connection, variant);
      console.log(
        `round ${round}  ${variant.padEnd(20)} ${String(r.perSecond).padStart(6)}/s  broker ${r.brokerMsPerMessage.toFixed(3)} ms CPU a message`,
      );
    }
} finally {
  await connection.close();
}
