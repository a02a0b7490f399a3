import type { ChannelModel } from 'amqplib';
import { dirname, join } from 'node:path';
import { Duplex } from 'node:stream';
import { batchFrameWrites } from './frame-batching';

/**
 * batchFrameWrites against the installed amqplib's own Connection and multiplexer, without a broker: the shape it
 * reaches into (`connection.muxer`, `Mux#_readIncoming`, `muxer.out`) is still there, and a turn's frames reach the
 * socket in one writev. Fails when an amqplib upgrade changes those internals (batchFrameWrites would then leave
 * them alone and return false).
 */

/** The parts of amqplib's (unexported) lib/connection.js Connection used here. */
interface AmqplibConnection {
  muxer: { _readIncoming: () => void; out: unknown };
  channels: Array<{ buffer: NodeJS.WritableStream } | null>;
  /** Allocates a channel number and pipes its write buffer (a PassThrough of frames) into the muxer. */
  freshChannel(channel: { onBufferDrain(): void }, options?: { highWaterMark?: number }): number;
}
type ConnectionClass = new (underlying: Duplex) => AmqplibConnection;

/** amqplib's package exports do not expose lib/connection.js: it is loaded by its path, beside the package's main. */
function amqplibConnectionClass(): ConnectionClass {
  const path = join(dirname(require.resolve('amqplib')), 'lib', 'connection.js');
  return (require(path) as { Connection: ConnectionClass }).Connection;
}

/** A socket stand-in that records each write syscall amqplib's stream would make: one `_write` or one `_writev`. */
function recordingSocket() {
  const writes: Buffer[] = [];
  const writevs: Buffer[][] = [];
  const socket = new Duplex({
    read() {
      // nothing arrives from the "broker"
    },
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk);
      callback();
    },
    writev(chunks, callback) {
      writevs.push(chunks.map((c) => c.chunk as Buffer));
      callback();
    },
  });
  const received = () => Buffer.concat([...writes, ...writevs.flat()]);
  return { socket, writes, writevs, received };
}

/** Two channels of `connection` each queue one frame in the same tick; resolves once the muxer wrote both. */
async function twoFramesThroughTheMuxer(
  connection: AmqplibConnection,
  received: () => Buffer,
  frames: [Buffer, Buffer],
): Promise<void> {
  const [a, b] = [1, 2].map(() => connection.freshChannel({ onBufferDrain: () => undefined }));
  const bufferOf = (n: number) => {
    const entry = connection.channels[n];
    if (!entry) throw new Error(`channel ${n} not allocated`);
    return entry.buffer;
  };
  bufferOf(a).write(frames[0]);
  bufferOf(b).write(frames[1]);
  const total = frames[0].length + frames[1].length;
  for (let i = 0; i < 100 && received().length < total; i++) await new Promise((r) => setImmediate(r));
}

describe('batchFrameWrites on the installed amqplib', () => {
  const Connection = amqplibConnectionClass();
  const frames: [Buffer, Buffer] = [Buffer.from('frame of channel 1;'), Buffer.from('frame of channel 2;')];
  const sockets: Duplex[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });

  it("patches the Connection's multiplexer: one turn's frames leave in one writev", async () => {
    const { socket, writes, writevs, received } = recordingSocket();
    sockets.push(socket);
    const connection = new Connection(socket);
    expect(connection.muxer.out).toBe(socket);
    const turn = connection.muxer._readIncoming;
    expect(typeof turn).toBe('function');

    expect(batchFrameWrites({ connection } as unknown as ChannelModel)).toBe(true);
    expect(connection.muxer._readIncoming).not.toBe(turn);
    expect(Object.prototype.hasOwnProperty.call(connection.muxer, '_readIncoming')).toBe(true);

    await twoFramesThroughTheMuxer(connection, received, frames);
    expect(received()).toEqual(Buffer.concat(frames));
    expect(writes).toHaveLength(0);
    expect(writevs).toEqual([frames]);
  });

  it('unpatched (the control): the same two frames leave in two writes', async () => {
    const { socket, writes, writevs, received } = recordingSocket();
    sockets.push(socket);
    const connection = new Connection(socket);

    await twoFramesThroughTheMuxer(connection, received, frames);
    expect(received()).toEqual(Buffer.concat(frames));
    expect(writes).toEqual(frames);
    expect(writevs).toHaveLength(0);
  });
});
