// How many frames one socket may send. Every frame costs the gateway a parse, and a subscription to a target or hosts
// a Redis read on its one shared connection: one viewer's socket sending 100,000 small frames held that connection
// for seconds (a REST read took 12 s), eight of them made other users' requests 503 and cut the gateway's bus and
// Redis connections. A token bucket per socket: what the dashboard sends (a few frames a page) never comes near it.

/** Frames a second a socket may send on average. */
export const WS_FRAMES_PER_SECOND = 20;
/** Frames a socket may send at once (a page subscribing to what it shows). */
export const WS_FRAME_BURST = 60;

/** ok: handle it; drop: over the budget (the first of a run of dropped frames is answered); close: flooding. */
export type FrameVerdict = 'ok' | 'drop-first' | 'drop' | 'close';

export class FrameBudget {
  private tokens: number;
  private at: number;
  /** Frames dropped since the last one taken. */
  private dropped = 0;

  constructor(
    private readonly rate = WS_FRAMES_PER_SECOND,
    private readonly burst = WS_FRAME_BURST,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.at = now();
  }

  take(): FrameVerdict {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.dropped = 0;
      return 'ok';
    }
    this.dropped++;
    // Still sending after as many dropped frames as a whole burst: not a page being busy, a flood. Said once: the
    // frames already on their way after it are dropped.
    if (this.dropped === this.burst + 1) return 'close';
    return this.dropped === 1 ? 'drop-first' : 'drop';
  }
}
