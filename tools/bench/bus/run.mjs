#!/usr/bin/env node
// Bus benchmark: publish-with-confirm and consume-with-ack throughput of
// libs/messaging against raw amqplib doing the same work, in one run, in a
// throwaway vhost it creates and deletes.
//
//   npm run bench:bus                      # builds dist/, then runs this
//   node tools/bench/bus/run.mjs [--messages 20000] [--size 512] [--prefetch 50]
//                                [--window 500] [--repeats 3] [--slice 2500] [--json]
//
// Needs the dist/ build (`node tools/build/build.mjs`): it loads
// dist/libs/messaging/src/index.js, i.e. what the services run.
// AMQP server: BENCH_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672); the vhost is
// created and deleted with `rabbitmqctl` (local broker) — no plugin needed.
//
// What each side does per message, so the comparison is like for like:
//   publish: build the envelope object, JSON.stringify, Buffer, publish persistent +
//            mandatory with the same properties/headers on a confirm channel; await
//            the confirms of every `window` messages together. libs/messaging also
//            validates the payload against its zod schema (publishMany chunks).
//   consume: quorum queue with the same arguments, prefetch `prefetch`, manual ack
//            after the handler; raw JSON.parses the body, libs/messaging runs
//            parseMessage (UTF-8 + JSON + envelope + payload schema), metrics, the
//            tag-generation guard, and a no-op async handler.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const distIndex = join(root, 'dist/libs/messaging/src/index.js');
if (!existsSync(distIndex)) {
  console.error('dist/ not built: run `node tools/build/build.mjs` first (or `npm run bench:bus`).');
  process.exit(2);
}
const amqp = require('amqplib');
const bus = require(distIndex);
const contracts = require(join(root, 'dist/libs/contracts/src/index.js'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const settings = {
  messages: arg('messages', 20_000),
  sizeBytes: arg('size', 512),
  prefetch: arg('prefetch', 50),
  confirmWindow: arg('window', 500),
  repeats: arg('repeats', 3),
  slice: arg('slice', 2_500),
  queueType: 'quorum',
  deliveryLimit: bus.DEFAULT_DELIVERY_LIMIT,
};
const json = process.argv.includes('--json');
const baseUrl = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const vhost = `fw-bench-${Date.now()}`;
const user = decodeURIComponent(new URL(baseUrl).username || 'guest');
const url = (() => {
  const u = new URL(baseUrl);
  u.pathname = `/${encodeURIComponent(vhost)}`;
  return u.toString();
})();
const ctl = (...a) => execFileSync('rabbitmqctl', ['-q', ...a], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

const source = { site: 'bench', service: 'tool', location: 'bench-1' };
const Def = contracts.Messages.CheckResult;

/** A CheckResult payload padded (metadata.pad) so the serialized envelope is ~sizeBytes. */
function makePayload(i, pad) {
  return {
    checkId: `check-${i % 100}`,
    targetId: `check:check-${i % 100}`,
    location: 'bench-1',
    ok: true,
    latencyMs: 12.5,
    attempt: 1,
    startedAt: '2025-11-24T12:00:00.000Z',
    metadata: { pad },
  };
}
function padFor(size) {
  const probe = JSON.stringify(contracts.buildEnvelope(Def.type, Def.schemaVersion, source, makePayload(0, '')));
  return 'x'.repeat(Math.max(0, size - Buffer.byteLength(probe)));
}
const pad = padFor(settings.sizeBytes);
const bodySize = Buffer.byteLength(
  JSON.stringify(contracts.buildEnvelope(Def.type, Def.schemaVersion, source, makePayload(0, pad))),
);
const quiet = bus.silentBusLogger;

/** Publishes n messages, awaiting the confirms of every `window` together. Returns {seconds, cpu}. */
async function rawPublish(ch, n) {
  const m = meter();
  for (let i = 0; i < n; i += settings.confirmWindow) {
    const end = Math.min(n, i + settings.confirmWindow);
    for (let j = i; j < end; j++) {
      const id = contracts.uuidv7();
      const envelope = {
        id,
        type: Def.type,
        schemaVersion: Def.schemaVersion,
        occurredAt: new Date().toISOString(),
        source,
        correlationId: id,
        payload: makePayload(j, pad),
      };
      const ok = ch.publish(Def.exchange, Def.routingKey, Buffer.from(JSON.stringify(envelope)), {
        persistent: true,
        deliveryMode: 2,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        messageId: id,
        correlationId: id,
        type: Def.type,
        timestamp: Math.floor(Date.now() / 1000),
        appId: source.service,
        mandatory: true,
        headers: {
          [contracts.BusHeader.SchemaVersion]: Def.schemaVersion,
          [contracts.BusHeader.MessageType]: Def.type,
        },
      });
      if (!ok) await new Promise((r) => ch.once('drain', r));
    }
    await ch.waitForConfirms();
  }
  return m.stop(n);
}

async function libPublish(publisher, n) {
  const m = meter();
  for (let i = 0; i < n; i += settings.confirmWindow) {
    const end = Math.min(n, i + settings.confirmWindow);
    const requests = [];
    for (let j = i; j < end; j++) requests.push({ definition: Def, payload: makePayload(j, pad) });
    await publisher.publishMany(requests, { timeoutMs: 30_000 });
  }
  return m.stop(n);
}

/** Consumes n messages with a fresh consumer; timed from consume-ok to the n-th ack. */
async function rawConsume(model, queue, n) {
  const ch = await model.createChannel();
  await ch.prefetch(settings.prefetch);
  let count = 0;
  let m;
  let done;
  const finished = new Promise((r) => (done = r));
  const { consumerTag } = await ch.consume(
    queue,
    (msg) => {
      JSON.parse(msg.content.toString('utf8'));
      ch.ack(msg);
      if (++count === n) done(m.stop(n));
    },
    { noAck: false },
  );
  m = meter();
  const result = await finished;
  await ch.cancel(consumerTag);
  await ch.close(); // deliveries past n return to the queue
  return result;
}

async function libConsume(consumer, queue, n) {
  let count = 0;
  let m = null;
  let done;
  const finished = new Promise((r) => (done = r));
  const sub = consumer.consume(
    { name: queue, bindings: [] },
    async () => {
      if (++count === n) done(m.stop(n));
    },
    { prefetch: settings.prefetch },
  );
  await sub.waitUntilActive(10_000);
  m = meter();
  if (count >= n) done(m.stop(n));
  const result = await finished;
  await sub.stop(); // handles and acks what was already prefetched (untimed, uncounted)
  return { ...result, extra: count - n };
}

/** Wall time and this process's CPU time of one timed section. */
function meter() {
  const t = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  return {
    stop(n) {
      const c = process.cpuUsage(cpu);
      return { n, seconds: Number(process.hrtime.bigint() - t) / 1e9, cpuSeconds: (c.user + c.system) / 1e6 };
    },
  };
}

function seconds(startedNs) {
  return Number(process.hrtime.bigint() - startedNs) / 1e9;
}

async function main() {
  ctl('add_vhost', vhost);
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    try {
      ctl('delete_vhost', vhost);
    } catch {
      /* already gone */
    }
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    ctl('set_permissions', '-p', vhost, user, '.*', '.*', '.*');
    const model = await amqp.connect(url);
    const admin = await model.createChannel();
    const rawPub = await model.createConfirmChannel();
    rawPub.on('return', (m) => console.error('raw publish returned', m.fields.routingKey));

    const connection = new bus.BusConnection({ url, name: 'bench', logger: quiet });
    const topology = new bus.BusTopology(connection, {});
    const publisher = new bus.BusPublisher(connection, { source, timeoutMs: 30_000 });
    const consumer = new bus.BusConsumer(connection, { topology, logger: quiet });
    connection.start();
    await connection.waitForSession(10_000);

    const declare = async (q) => {
      await admin.assertQueue(q, { durable: true, arguments: bus.workQueueArguments(q, settings.deliveryLimit) });
      await admin.assertQueue(contracts.deadLetterQueueOf(q), {
        durable: true,
        arguments: bus.deadLetterQueueArguments(),
      });
      await admin.bindQueue(contracts.deadLetterQueueOf(q), contracts.ExchangeName.DeadLetter, q);
    };
    const only = async (q, fn) => {
      await admin.bindQueue(q, Def.exchange, Def.routingKey);
      try {
        return await fn();
      } finally {
        await admin.unbindQueue(q, Def.exchange, Def.routingKey);
      }
    };

    // The box is shared (broker, other work): raw and lib alternate in slices of
    // `slice` messages, so both see the same background load; totals are summed.
    const slice = Math.min(settings.slice, settings.messages);
    const totals = () => ({ n: 0, seconds: 0, cpuSeconds: 0 });
    const results = { raw: { publish: totals(), consume: totals() }, lib: { publish: totals(), consume: totals() } };
    const perRun = [];
    const add = (t, r) => {
      t.n += r.n;
      t.seconds += r.seconds;
      t.cpuSeconds += r.cpuSeconds;
    };
    const runs = [
      { warmup: true, n: Math.min(2 * slice, settings.messages) },
      ...Array.from({ length: settings.repeats }, () => ({ warmup: false, n: settings.messages })),
    ];
    for (const [r, run] of runs.entries()) {
      const qRaw = `bench.raw.${r}`;
      const qLib = `bench.lib.${r}`;
      await declare(qRaw);
      await declare(qLib);
      const run_ = { raw: { publish: totals(), consume: totals() }, lib: { publish: totals(), consume: totals() } };
      for (let k = 0; k < run.n / slice; k++) {
        // Alternate who goes first in each slice.
        for (const who of k % 2 === 0 ? ['raw', 'lib'] : ['lib', 'raw']) {
          if (who === 'raw') add(run_.raw.publish, await only(qRaw, () => rawPublish(rawPub, slice)));
          else add(run_.lib.publish, await only(qLib, () => libPublish(publisher, slice)));
        }
      }
      let libExtra = 0;
      for (let k = 0; (k + 1) * slice <= run.n - libExtra; k++) {
        for (const who of k % 2 === 0 ? ['raw', 'lib'] : ['lib', 'raw']) {
          if (who === 'raw') add(run_.raw.consume, await rawConsume(model, qRaw, slice));
          else {
            const res = await libConsume(consumer, qLib, slice);
            libExtra += res.extra;
            add(run_.lib.consume, res);
          }
        }
      }
      if (!run.warmup) {
        for (const who of ['raw', 'lib'])
          for (const phase of ['publish', 'consume']) add(results[who][phase], run_[who][phase]);
        const rate = (t) => t.n / t.seconds;
        perRun.push({
          publish: rate(run_.lib.publish) / rate(run_.raw.publish),
          consume: rate(run_.lib.consume) / rate(run_.raw.consume),
        });
        if (!json) {
          const f = (t) => Math.round(rate(t)).toLocaleString('en-US');
          console.error(
            `run ${r}: publish raw ${f(run_.raw.publish)}/s lib ${f(run_.lib.publish)}/s · consume raw ${f(run_.raw.consume)}/s lib ${f(run_.lib.consume)}/s`,
          );
        }
      }
      for (const q of [qRaw, qLib]) {
        await admin.deleteQueue(q);
        await admin.deleteQueue(contracts.deadLetterQueueOf(q));
      }
    }
    await consumer.stop();
    await publisher.close();
    await connection.close();
    await model.close();

    const rate = (t) => t.n / t.seconds;
    const cpuUs = (t) => (t.cpuSeconds / t.n) * 1e6;
    const summary = {
      settings: {
        ...settings,
        bodyBytes: bodySize,
        node: process.version,
        rabbitmq: rabbitVersion(),
        cpus: (await import('node:os')).cpus().length,
      },
      publishPerSecond: { raw: rate(results.raw.publish), lib: rate(results.lib.publish) },
      consumePerSecond: { raw: rate(results.raw.consume), lib: rate(results.lib.consume) },
      clientCpuMicrosPerMessage: {
        publish: { raw: cpuUs(results.raw.publish), lib: cpuUs(results.lib.publish) },
        consume: { raw: cpuUs(results.raw.consume), lib: cpuUs(results.lib.consume) },
      },
      perRunRatios: perRun,
    };
    summary.ratio = {
      publish: summary.publishPerSecond.lib / summary.publishPerSecond.raw,
      consume: summary.consumePerSecond.lib / summary.consumePerSecond.raw,
    };
    if (json) {
      console.log(JSON.stringify(summary, null, 2));
    } else {
      const s = summary.settings;
      const n = (x) => Math.round(x).toLocaleString('en-US');
      const c = summary.clientCpuMicrosPerMessage;
      const range = (k) =>
        `${Math.min(...perRun.map((p) => p[k])).toFixed(2)}–${Math.max(...perRun.map((p) => p[k])).toFixed(2)}`;
      console.log(
        [
          `Bus benchmark: ${s.repeats} runs × ${s.messages} messages per side and phase, raw and lib alternating in slices of ${slice} (after a warm-up run)`,
          `settings: body ${s.bodyBytes} B, prefetch ${s.prefetch}, confirm window ${s.confirmWindow}, ${s.queueType} queue (x-delivery-limit ${s.deliveryLimit}, DLX, at-least-once, reject-publish), persistent, mandatory`,
          `host: node ${s.node}, RabbitMQ ${s.rabbitmq}, ${s.cpus} CPUs shared with the broker`,
          '',
          '| | raw amqplib | libs/messaging | ratio (runs) | client CPU µs/msg raw / lib |',
          '|---|---:|---:|---:|---:|',
          `| publish with confirms (msg/s) | ${n(summary.publishPerSecond.raw)} | ${n(summary.publishPerSecond.lib)} | ${summary.ratio.publish.toFixed(2)}× (${range('publish')}) | ${c.publish.raw.toFixed(1)} / ${c.publish.lib.toFixed(1)} |`,
          `| consume with ack (msg/s) | ${n(summary.consumePerSecond.raw)} | ${n(summary.consumePerSecond.lib)} | ${summary.ratio.consume.toFixed(2)}× (${range('consume')}) | ${c.consume.raw.toFixed(1)} / ${c.consume.lib.toFixed(1)} |`,
        ].join('\n'),
      );
    }
  } finally {
    cleanup();
  }
}

function rabbitVersion() {
  try {
    return /RabbitMQ version: (\S+)/.exec(ctl('status'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
