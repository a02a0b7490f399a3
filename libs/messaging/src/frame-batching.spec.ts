import type { ChannelModel } from 'amqplib';
import { batchFrameWrites } from './frame-batching';

// The shapes batchFrameWrites refuses (an amqplib whose internals changed) and what the patched turn does.
const model = (connection: unknown) => ({ connection }) as unknown as ChannelModel;

describe('batchFrameWrites', () => {
  it('patches nothing and says so where the connection has no multiplexer of the known shape', () => {
    expect(batchFrameWrites(model(undefined))).toBe(false);
    expect(batchFrameWrites(model({}))).toBe(false);
    expect(batchFrameWrites(model({ muxer: { _readIncoming: 'not a function', out: {} } }))).toBe(false);
    const turn = () => undefined;
    const noCork = { _readIncoming: turn, out: { write: () => true } };
    expect(batchFrameWrites(model({ muxer: noCork }))).toBe(false);
    expect(noCork._readIncoming).toBe(turn);
  });

  it('corks the socket for one turn and uncorks it before the turn returns, even when the turn throws', () => {
    const calls: string[] = [];
    const out = {
      destroyed: false,
      writableEnded: false,
      cork: () => calls.push('cork'),
      uncork: () => calls.push('uncork'),
    };
    let fail = false;
    const muxer = {
      out,
      _readIncoming(this: unknown) {
        calls.push(this === muxer ? 'turn on the muxer' : 'turn elsewhere');
        if (fail) throw new Error('turn failed');
      },
    };
    expect(batchFrameWrites(model({ muxer }))).toBe(true);
    muxer._readIncoming();
    expect(calls).toEqual(['cork', 'turn on the muxer', 'uncork']);

    calls.length = 0;
    fail = true;
    expect(() => muxer._readIncoming()).toThrow('turn failed');
    expect(calls).toEqual(['cork', 'turn on the muxer', 'uncork']);

    // Patched once: a second call keeps the one wrapper (one cork per turn).
    expect(batchFrameWrites(model({ muxer }))).toBe(true);
    calls.length = 0;
    fail = false;
    muxer._readIncoming();
    expect(calls).toEqual(['cork', 'turn on the muxer', 'uncork']);

    // A socket already destroyed or ended is left to amqplib: no cork.
    out.destroyed = true;
    calls.length = 0;
    muxer._readIncoming();
    expect(calls).toEqual(['turn on the muxer']);
  });
});
