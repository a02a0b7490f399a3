import { createLogger } from '@fleetwatch/observability';
import type { SessionsRepository } from '@fleetwatch/persistence';
import { SESSION_SWEEP_EVERY_MS, SESSION_SWEEP_FIRST_MS, SessionHousekeeping } from './session-housekeeping.service';

// When expired sessions are deleted (what is deleted is tested against Postgres in auth.int-spec).

describe('SessionHousekeeping', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'], now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  function setUp(deleteExpired: () => Promise<number> = async () => 0) {
    const sweeps: number[] = [];
    const sessions = {
      deleteExpired: async () => {
        sweeps.push(Date.now());
        return deleteExpired();
      },
    } as unknown as SessionsRepository;
    return { service: new SessionHousekeeping(sessions, createLogger('api-gateway', 'silent')), sweeps };
  }

  it('sweeps a minute after boot, then every hour — a gateway restarted more often than hourly still sweeps', async () => {
    const { service, sweeps } = setUp();
    const boot = Date.now();
    service.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(SESSION_SWEEP_FIRST_MS + 2 * SESSION_SWEEP_EVERY_MS + 1000);
    expect(sweeps.map((t) => t - boot)).toEqual([
      SESSION_SWEEP_FIRST_MS,
      SESSION_SWEEP_FIRST_MS + SESSION_SWEEP_EVERY_MS,
      SESSION_SWEEP_FIRST_MS + 2 * SESSION_SWEEP_EVERY_MS,
    ]);
    service.onModuleDestroy();
  });

  it('a failed sweep is tried again at the next one; nothing runs once destroyed', async () => {
    let calls = 0;
    const { service, sweeps } = setUp(async () => {
      if (++calls === 1) throw new Error('Connection terminated unexpectedly');
      return 3;
    });
    service.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(SESSION_SWEEP_FIRST_MS + SESSION_SWEEP_EVERY_MS + 1000);
    expect(sweeps).toHaveLength(2);
    service.onModuleDestroy();
    await jest.advanceTimersByTimeAsync(3 * SESSION_SWEEP_EVERY_MS);
    expect(sweeps).toHaveLength(2);
  });

  it('destroyed while a sweep runs: no sweep is scheduled after it', async () => {
    let finish: (n: number) => void = () => undefined;
    const { service, sweeps } = setUp(() => new Promise<number>((resolve) => (finish = resolve)));
    service.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(SESSION_SWEEP_FIRST_MS);
    expect(sweeps).toHaveLength(1);
    service.onModuleDestroy();
    finish(0);
    await jest.advanceTimersByTimeAsync(3 * SESSION_SWEEP_EVERY_MS);
    expect(sweeps).toHaveLength(1);
  });
});
