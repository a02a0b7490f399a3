import type { ChannelModel } from 'amqplib';

/**
 * amqplib's connection multiplexer (lib/mux.js, `Mux#_readIncoming`) takes the frames every channel queued since
 * its last turn and writes them to the socket one `write()` at a time. With `noDelay` (no Nagle: a lone confirm
 * or ack must not wait 40 ms) each of those writes is its own syscall and TCP segment, so a busy publisher or
 * consumer pays one kernel send per publish, ack or nack (profile of status-ingest under single POSTs: 11.6 % of
 * its samples in the socket write of these frames — on loopback the broker's receive runs in that syscall).
 *
 * `batchFrameWrites` corks the socket for the length of one multiplexer turn, so that everything the turn writes
 * leaves in one `writev`: the same bytes, in the same order, at the same moment (the turn uncorks before it
 * returns), in as few syscalls and segments as the kernel allows. Backpressure holds in smaller steps: corked frames
 * count against the socket's high-water mark, so a turn stops once ~16 KiB are queued (`write()` answers false), the
 * uncork writes them, and the socket's 'drain' starts the next turn (before, each write reached the kernel at once
 * and the buffer rarely filled).
 *
 * It reaches into amqplib's connection (`model.connection.muxer`), which amqplib does not export; the shape is
 * checked first, and where it does not match (an amqplib that changed it) nothing is patched and false is
 * returned — frames then go out one write each, as amqplib does. A spec asserts the patch applies to the
 * installed amqplib.
 */
export function batchFrameWrites(model: ChannelModel): boolean {
  const muxer = muxerOf(model);
  if (!muxer || muxer[PATCHED]) return muxer?.[PATCHED] === true;
  const turn = muxer._readIncoming;
  const out = muxer.out;
  muxer._readIncoming = function readIncomingCorked(this: MuxLike): void {
    // Corked only while the socket can take writes: a destroyed or ended socket is left to amqplib's own handling.
    if (out.destroyed || out.writableEnded) return turn.call(this);
    out.cork();
    try {
      turn.call(this);
    } finally {
      out.uncork();
    }
  };
  muxer[PATCHED] = true;
  return true;
}

const PATCHED = Symbol('fleetwatch.frameWritesBatched');

interface CorkableOut {
  cork(): void;
  uncork(): void;
  destroyed: boolean;
  writableEnded: boolean;
}

interface MuxLike {
  _readIncoming: (this: MuxLike) => void;
  out: CorkableOut;
  [PATCHED]?: boolean;
}

function muxerOf(model: ChannelModel): MuxLike | undefined {
  const connection = (model as unknown as { connection?: { muxer?: unknown } }).connection;
  const muxer = connection?.muxer as Partial<MuxLike> | undefined;
  if (!muxer || typeof muxer !== 'object') return undefined;
  if (typeof muxer._readIncoming !== 'function') return undefined;
  const out = muxer.out as Partial<CorkableOut> | undefined;
  if (!out || typeof out.cork !== 'function' || typeof out.uncork !== 'function') return undefined;
  return muxer as MuxLike;
}
