import { connect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import type { Socket } from 'node:net';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { batchFrameWrites } from './frame-batching';

// The frame batching of frame-batching.ts on the installed amqplib and a real broker: the same frames, in order,
// in far fewer socket writes; backpressure and confirms as before.

interface WriteCounts {
  writes: number;
  writevs: number;
  chunks: number;
  /** Bytes of each writev, in order. */
  writevBytes: number[];
  /** The largest single chunk written. */
  maxChunk: number;
}

/** Counts the socket's writes: `_write` (one chunk) and `_writev` (several at once). */
function countWrites(model: ChannelModel): WriteCounts {
  const socket = (model as unknown as { connection: { stream: Socket } }).connection.stream;
  const counts: WriteCounts = { writes: 0, writevs: 0, chunks: 0, writevBytes: [], maxChunk: 0 };
  const s = socket as unknown as {
    _write: (chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void) => void;
    _writev: (chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void) => void;
  };
  const write = s._write.bind(socket);
  const writev = s._writev.bind(socket);
  s._write = (chunk, encoding, cb) => {
    counts.writes++;
    counts.chunks++;
    counts.maxChunk = Math.max(counts.maxChunk, chunk.length);
    write(chunk, encoding, cb);
  };
  s._writev = (chunks, cb) => {
    counts.writevs++;
    counts.chunks += chunks.length;
    let bytes = 0;
    for (const { chunk } of chunks) {
      bytes += chunk.length;
      counts.maxChunk = Math.max(counts.maxChunk, chunk.length);
    }
    counts.writevBytes.push(bytes);
    writev(chunks, cb);
  };
  return counts;
}

describe('frame batching (one writev per multiplexer turn)', () => {
  let vhost: IsolatedVhost;
  const models: ChannelModel[] = [];

  beforeAll(async () => {
    vhost = await createIsolatedVhost('frame-batching');
  });
  afterAll(async () => {
    for (const m of models) await m.close().catch(() => undefined);
    await vhost?.dispose();
  });

  const open = async (batched: boolean) => {
    const model = await connect(vhost.amqpUrl, { noDelay: true });
    models.push(model);
    if (batched) expect(batchFrameWrites(model)).toBe(true);
    return model;
  };

  /** Publishes `rounds` × `perRound` persistent messages, each round sent in one tick and confirmed. */
  const publishRounds = async (model: ChannelModel, queue: string, rounds: number, perRound: number, size = 300) => {
    const ch = await model.createConfirmChannel();
    let n = 0;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < perRound; i++) {
        const body = Buffer.alloc(size, 'x');
        body.write(String(n++).padStart(8, '0'));
        ch.sendToQueue(queue, body, { persistent: true });
      }
      await ch.waitForConfirms();
    }
    await ch.close();
    return n;
  };

  const drain = async (model: ChannelModel, queue: string, expected: number) => {
    const ch = await model.createChannel();
    const got: number[] = [];
    await ch.consume(queue, (m: ConsumeMessage | null) => {
      if (!m) return;
      got.push(Number(m.content.subarray(0, 8).toString()));
      ch.ack(m);
    });
    await waitFor(async () => got.length >= expected, { timeoutMs: 30_000, description: `${expected} consumed` });
    await ch.close();
    return got;
  };

  it('applies to the installed amqplib, once per connection', async () => {
    const model = await open(true);
    // A second call finds it patched and leaves it (no double cork).
    expect(batchFrameWrites(model)).toBe(true);
  });

  it("sends a turn's frames in one writev: every message confirmed and delivered once, in order", async () => {
    const plainModel = await open(false);
    const batchedModel = await open(true);
    const setup = await plainModel.createChannel();
    const plainQueue = (await setup.assertQueue('fb-plain', { durable: true })).queue;
    const batchedQueue = (await setup.assertQueue('fb-batched', { durable: true })).queue;
    await setup.close();

    const plain = countWrites(plainModel);
    const batched = countWrites(batchedModel);
    const sentPlain = await publishRounds(plainModel, plainQueue, 50, 20);
    const sentBatched = await publishRounds(batchedModel, batchedQueue, 50, 20);

    // amqplib alone: one socket write per publish (each message fits one chunk). Batched: the 20 publishes of a
    // round leave together — a few writevs a round at most (the channel's open/close and confirms' turns add some).
    expect(plain.writes).toBeGreaterThanOrEqual(1000);
    expect(batched.writes + batched.writevs).toBeLessThan(200);
    expect(batched.chunks).toBeGreaterThanOrEqual(1000);

    const all = Array.from({ length: 1000 }, (_, i) => i);
    expect(await drain(plainModel, plainQueue, sentPlain)).toEqual(all);
    expect(await drain(batchedModel, batchedQueue, sentBatched)).toEqual(all);
  });

  it('keeps backpressure: a burst far past the socket buffer in one tick arrives whole and in order', async () => {
    const model = await open(true);
    const setup = await model.createChannel();
    const queue = (await setup.assertQueue('fb-burst', { durable: true })).queue;
    await setup.close();
    const counts = countWrites(model);
    const socket = (model as unknown as { connection: { stream: Socket } }).connection.stream;
    // 3,000 messages of 4 KiB (~12 MiB) written in one tick: the corked socket passes its high-water mark, the
    // multiplexer stops there (write() answered false), the turn's uncork writes what it queued, and 'drain' starts
    // the next turn. A wrapper that ignored write()'s answer would send everything in one or a few huge writevs.
    const sent = await publishRounds(model, queue, 1, 3000, 4096);
    const total = counts.writevBytes.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(3000 * 4096);
    expect(Math.max(...counts.writevBytes)).toBeLessThanOrEqual(socket.writableHighWaterMark + counts.maxChunk);
    expect(counts.writevs).toBeGreaterThanOrEqual(Math.floor(total / (socket.writableHighWaterMark + counts.maxChunk)));
    expect(await drain(model, queue, sent)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });
});
