import { statusUpdateInputSchema } from '@fleetwatch/contracts';
import { statusOfLifecycle } from '@fleetwatch/domain';
import fc from 'fast-check';
import {
  eventSubject,
  healthSince,
  isLifecycleAction,
  lifecycleOf,
  updateOfContainer,
  updateOfRemoved,
  saltedUpdateId,
  type ContainerSnapshot,
} from './container-status';

// Code units 0..0xFFFF plus NUL and both surrogate halves often: what an engine or API server may hand over.
const rawText = (maxLength: number, minLength = 0) =>
  fc.string({
    unit: fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom('\u0000', '\ud800', '\udfff', '😀'),
    ),
    minLength,
    maxLength,
  });

const T0 = '2026-12-02T10:00:00.123456789Z';
const T1 = '2026-12-02T11:00:00Z';
const ZERO = '0001-01-01T00:00:00Z';
const NOW = Date.parse('2026-12-02T12:00:00Z');
const opts = { instancePrefix: '', source: 'docker-watcher@test', now: NOW, maxAgeMs: 24 * 3600_000 };

const c = (
  state: NonNullable<ContainerSnapshot['State']>,
  extra: Partial<ContainerSnapshot> = {},
): ContainerSnapshot => ({
  Id: 'a'.repeat(64),
  Name: '/web-1',
  Created: T0,
  RestartCount: 0,
  State: { StartedAt: ZERO, FinishedAt: ZERO, ...state },
  Config: {
    Image: 'nginx:1.27',
    Labels: { 'com.docker.compose.project': 'shop', 'com.docker.compose.service': 'web' },
  },
  ...extra,
});
const log = (...codes: number[]) =>
  codes.map((code, i) => ({ Start: `2026-12-02T11:00:0${i}Z`, End: `2026-12-02T11:00:0${i}.5Z`, ExitCode: code }));

describe('lifecycleOf: Docker container state → lifecycle state → status class', () => {
  it.each<[string, ContainerSnapshot, string, string, string | undefined]>([
    ['running', c({ Status: 'running', StartedAt: T0 }), 'running', 'UP', T0],
    [
      'running, healthy',
      c({ Status: 'running', StartedAt: T0, Health: { Status: 'healthy', Log: log(0) } }),
      'healthy',
      'UP',
      T0,
    ],
    [
      'running, health starting',
      c({ Status: 'running', StartedAt: T0, Health: { Status: 'starting' } }),
      'starting',
      'UP',
      T0,
    ],
    [
      'running, unhealthy since the first failure of the streak',
      c({ Status: 'running', StartedAt: T0, Health: { Status: 'unhealthy', FailingStreak: 3, Log: log(0, 1, 1, 1) } }),
      'unhealthy',
      'DOWN',
      '2026-12-02T11:00:01.5Z',
    ],
    ['paused (no time kept)', c({ Status: 'paused', StartedAt: T0 }), 'paused', 'PAUSED', undefined],
    ['restarting', c({ Status: 'restarting', FinishedAt: T1 }), 'restarting', 'DOWN', T1],
    ['created', c({ Status: 'created' }), 'created', 'UNKNOWN', T0],
    ['exited 0', c({ Status: 'exited', ExitCode: 0, FinishedAt: T1 }), 'exited', 'DOWN', T1],
    ['exited 137', c({ Status: 'exited', ExitCode: 137, FinishedAt: T1 }), 'failed', 'DOWN', T1],
    ['OOM killed', c({ Status: 'exited', ExitCode: 137, OOMKilled: true, FinishedAt: T1 }), 'failed', 'DOWN', T1],
    [
      'exited with an engine error',
      c({ Status: 'exited', ExitCode: 128, Error: 'no such file', FinishedAt: T1 }),
      'failed',
      'DOWN',
      T1,
    ],
    ['dead', c({ Status: 'dead', FinishedAt: T1 }), 'dead', 'DOWN', T1],
    ['removing', c({ Status: 'removing', FinishedAt: T1 }), 'stopping', 'UNKNOWN', T1],
    ['a state this watcher does not know', c({ Status: 'hibernating' }), 'unknown', 'UNKNOWN', undefined],
  ])('%s → %s (%s)', (_name, snapshot, state, status, since) => {
    const life = lifecycleOf(snapshot);
    expect(life.state).toBe(state);
    expect(statusOfLifecycle(life.state)).toBe(status);
    expect(life.since).toBe(since);
  });

  it('names the reason in the message', () => {
    expect(lifecycleOf(c({ Status: 'exited', ExitCode: 137, OOMKilled: true })).message).toBe(
      'killed: out of memory (exit code 137)',
    );
    expect(lifecycleOf(c({ Status: 'exited', ExitCode: 2 })).message).toBe('exited with code 2');
  });
});

describe('healthSince', () => {
  it.each([
    ['healthy after failures: the first success', 'healthy', log(1, 1, 0, 0), '2026-12-02T11:00:02.5Z'],
    ['the whole log agrees: older than the log', 'healthy', log(0, 0, 0), undefined],
    ['starting has no since', 'starting', log(1), undefined],
    ['no log', 'unhealthy', [], undefined],
  ])('%s', (_n, status, entries, expected) => {
    expect(healthSince(c({ Status: 'running', Health: { Status: status, Log: entries } }))).toBe(expected);
  });
});

describe('updateOfContainer', () => {
  it('builds an update the shared contract accepts, with compose labels and bounded metadata', () => {
    const u = updateOfContainer(c({ Status: 'exited', ExitCode: 1, FinishedAt: T1 }), { ...opts, location: 'lab-1' });
    expect(statusUpdateInputSchema.parse(u)).toBeTruthy();
    expect(u).toMatchObject({
      instanceId: 'web-1',
      kind: 'container',
      status: 'failed',
      location: 'lab-1',
      occurredAt: '2026-12-02T11:00:00.000Z',
      labels: { image: 'nginx:1.27', compose_project: 'shop', compose_service: 'web' },
      metadata: { containerId: 'a'.repeat(64), exitCode: 1, oomKilled: false, restartCount: 0 },
    });
    expect(u.updateId).toMatch(/^docker:aaaaaaaaaaaa:[0-9a-f]{24}$/);
  });

  it('the same state gives the same updateId whoever sees it; every transition a new one', () => {
    const running = c({ Status: 'running', StartedAt: T0 });
    const a = updateOfContainer(running, opts);
    expect(updateOfContainer(structuredClone(running), { ...opts, now: NOW + 60_000 }, T1).updateId).toBe(a.updateId);
    const restarted = updateOfContainer(c({ Status: 'running', StartedAt: T1 }), opts);
    const died = updateOfContainer(c({ Status: 'exited', ExitCode: 1, StartedAt: T0, FinishedAt: T1 }), opts);
    const unhealthy = updateOfContainer(
      c({ Status: 'running', StartedAt: T0, Health: { Status: 'unhealthy', Log: log(0, 1) } }),
      opts,
    );
    expect(new Set([a, restarted, died, unhealthy].map((u) => u.updateId)).size).toBe(4);
    expect(saltedUpdateId(a.updateId as string, 'x')).not.toBe(a.updateId);
    expect(
      statusUpdateInputSchema.safeParse({ ...a, updateId: saltedUpdateId(a.updateId as string, 'x') }).success,
    ).toBe(true);
  });

  it('dates the update when the event came, else when the state began, clamped to [now − max age, now]', () => {
    const running = c({ Status: 'running', StartedAt: '2026-11-01T00:00:00Z' });
    expect(updateOfContainer(running, opts).occurredAt).toBe('2026-12-01T12:00:00.000Z');
    expect(updateOfContainer(running, opts, '2026-12-02T11:59:00Z').occurredAt).toBe('2026-12-02T11:59:00.000Z');
    expect(updateOfContainer(c({ Status: 'paused' }), opts).occurredAt).toBe(new Date(NOW).toISOString());
    expect(updateOfContainer(c({ Status: 'running', StartedAt: '2027-01-01T00:00:00Z' }), opts).occurredAt).toBe(
      new Date(NOW).toISOString(),
    );
  });

  it('falls back to the short id when the name does not fit an instance id, and applies the prefix', () => {
    expect(updateOfContainer(c({ Status: 'running' }, { Name: '/wéb' }), opts).instanceId).toBe('aaaaaaaaaaaa');
    expect(updateOfContainer(c({ Status: 'running' }), { ...opts, instancePrefix: 'host-1/' }).instanceId).toBe(
      'host-1/web-1',
    );
  });

  it('a removed container is stopped, with one id however often the removal is seen', () => {
    const u = updateOfRemoved({ Id: 'b'.repeat(64), Name: 'old-1', image: 'redis:7' }, T1, opts);
    expect(statusUpdateInputSchema.parse(u)).toMatchObject({
      status: 'removed',
      instanceId: 'old-1',
      message: 'container removed',
    });
    expect(updateOfRemoved({ Id: 'b'.repeat(64), Names: ['/old-1'] }, undefined, opts).updateId).toBe(u.updateId);
  });

  it('whatever the engine says about a container (names, labels, errors — NUL and lone surrogates too), the update is one the contract accepts', () => {
    fc.assert(
      fc.property(
        fc.record({
          name: rawText(300),
          image: rawText(2000),
          error: rawText(5000),
          status: fc.constantFrom('running', 'exited', 'paused', 'dead', 'created', 'restarting', 'removing', 'odd'),
          health: fc.option(fc.constantFrom('healthy', 'unhealthy', 'starting', 'none')),
          exit: fc.integer({ min: -1, max: 255 }),
          project: rawText(2000),
          started: fc.option(fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
        }),
        (r) => {
          const snapshot = c(
            {
              Status: r.status,
              ExitCode: r.exit,
              Error: r.error,
              StartedAt: r.started ?? ZERO,
              ...(r.health ? { Health: { Status: r.health, Log: log(1, 0) } } : {}),
            },
            { Name: `/${r.name}`, Config: { Image: r.image, Labels: { 'com.docker.compose.project': r.project } } },
          );
          const result = statusUpdateInputSchema.safeParse(updateOfContainer(snapshot, opts));
          return result.success;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('events', () => {
  it.each([
    [
      {
        Type: 'container',
        Action: 'die',
        Actor: { ID: 'x1', Attributes: { name: 'web-1', image: 'nginx' } },
        timeNano: 1796210000123 * 1e6 + 456789,
      },
      { id: 'x1', action: 'die', name: 'web-1', image: 'nginx', at: '2026-12-02T11:13:20.123Z' },
    ],
    [
      { status: 'start', id: 'x2', time: 1796210000 },
      { id: 'x2', action: 'start', name: undefined, image: undefined, at: '2026-12-02T11:13:20.000Z' },
    ],
    [{ Type: 'network', Action: 'connect', Actor: { ID: 'n1' } }, null],
    [{ Type: 'container' }, null],
  ])('%j → %j', (event, subject) => {
    expect(eventSubject(event)).toEqual(subject);
  });

  it.each([
    ['create', true],
    ['start', true],
    ['die', true],
    ['stop', true],
    ['kill', true],
    ['oom', true],
    ['destroy', true],
    ['pause', true],
    ['unpause', true],
    ['restart', true],
    ['health_status: healthy', true],
    ['exec_start: sh', false],
    ['attach', false],
    ['top', false],
  ])('%s is a lifecycle action: %s', (action, expected) => {
    expect(isLifecycleAction(action)).toBe(expected);
  });
});
