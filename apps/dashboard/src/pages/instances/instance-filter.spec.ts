import { describe, expect, it } from 'vitest';
import { InstanceKind, TargetStatus, type InstanceView } from '@fleetwatch/contracts';
import {
  EMPTY_INSTANCE_FILTER,
  instanceApiQuery,
  instanceFilterToParams,
  instancePlaceholder,
  matchesInstance,
  parseInstanceFilter,
} from './instance-filter';

const instance: InstanceView = {
  instanceId: 'web-1',
  id: 'instance:web-1',
  name: 'web-1',
  status: TargetStatus.Down,
  instanceKind: InstanceKind.Container,
  lifecycle: 'exited',
  locations: [{ location: 'lab-1', status: TargetStatus.Down, lastSeen: null, latencyMs: null, detail: 'OOM killed' }],
  lastSeen: null,
  since: null,
  tags: ['prod'],
  labels: { app: 'shop' },
};

describe('instance filter', () => {
  it.each([
    ['', EMPTY_INSTANCE_FILTER],
    ['status=DOWN,UP', { ...EMPTY_INSTANCE_FILTER, status: [TargetStatus.Down, TargetStatus.Up] }],
    // Unknown statuses are dropped, duplicates folded, order made stable.
    ['status=UP,BOGUS,UP,DOWN', { ...EMPTY_INSTANCE_FILTER, status: [TargetStatus.Down, TargetStatus.Up] }],
    ['tag=+prod+&location=lab-1&q=web', { status: [], kind: [], tag: 'prod', location: 'lab-1', q: 'web' }],
    // Kinds in any case, unknown ones dropped, in the order the page lists them.
    ['kind=Pod,vm,container,pod', { ...EMPTY_INSTANCE_FILTER, kind: [InstanceKind.Container, InstanceKind.Pod] }],
  ])('%j → %j', (query, expected) => {
    expect(parseInstanceFilter(new URLSearchParams(query))).toEqual(expected);
  });

  it('round-trips through the URL, writing only what is set', () => {
    const f = { status: [TargetStatus.Stale], kind: [InstanceKind.Job], tag: 'a b', location: '', q: 'x' };
    expect(instanceFilterToParams(f).toString()).toBe('status=STALE&kind=job&tag=a+b&q=x');
    expect(parseInstanceFilter(instanceFilterToParams(f))).toEqual(f);
    expect(instanceFilterToParams(EMPTY_INSTANCE_FILTER).toString()).toBe('');
  });

  it('sends the server-side part only (the search stays in the page)', () => {
    const q = instanceApiQuery({
      status: [TargetStatus.Down, TargetStatus.Up],
      kind: [InstanceKind.Container, InstanceKind.Pod],
      tag: 't',
      location: 'l',
      q: 'x',
    });
    expect(q.toString()).toBe('status=DOWN%2CUP&kind=container%2Cpod&tag=t&location=l');
  });

  it.each([
    ['', true],
    ['WEB', true],
    ['exited', true],
    ['app=shop', true],
    ['prod', true],
    ['oom', true],
    ['lab-1', true],
    ['db-', false],
    ['ÖOM', true], // accents and case do not count
  ])('search %j → %s', (q, expected) => {
    expect(matchesInstance(instance, q)).toBe(expected);
  });
});

// While a new filter's list loads, the page shows the list it had: before, as it was — a click on DOWN showed the UP
// instances of the previous list under the DOWN filter (10,000 instances: 10 requests, seconds) and, after a failed
// load's retries, until the error. Now only the rows the new filter takes.
describe('instancePlaceholder', () => {
  const up = { ...instance, instanceId: 'web-2', id: 'instance:web-2', status: TargetStatus.Up, tags: ['dev'] };
  const elsewhere = {
    ...instance,
    instanceId: 'web-3',
    id: 'instance:web-3',
    locations: [],
    instanceKind: InstanceKind.Pod,
  };
  const unknownKind = { ...up, instanceId: 'web-4', id: 'instance:web-4', instanceKind: null };
  const previous = { items: [instance, up, elsewhere, unknownKind], total: 4 };
  it.each([
    ['status DOWN', { ...EMPTY_INSTANCE_FILTER, status: [TargetStatus.Down] }, ['web-1', 'web-3']],
    [
      'status UP or STALE',
      { ...EMPTY_INSTANCE_FILTER, status: [TargetStatus.Stale, TargetStatus.Up] },
      ['web-2', 'web-4'],
    ],
    ['tag prod', { ...EMPTY_INSTANCE_FILTER, tag: 'prod' }, ['web-1', 'web-3']],
    ['location lab-1', { ...EMPTY_INSTANCE_FILTER, location: 'lab-1' }, ['web-1', 'web-2', 'web-4']],
    ['kind pod', { ...EMPTY_INSTANCE_FILTER, kind: [InstanceKind.Pod] }, ['web-3']],
    // An instance whose kind is not known yet is none of them (as the API filters).
    [
      'kind container or job',
      { ...EMPTY_INSTANCE_FILTER, kind: [InstanceKind.Container, InstanceKind.Job] },
      ['web-1', 'web-2'],
    ],
    ['no filter', EMPTY_INSTANCE_FILTER, ['web-1', 'web-2', 'web-3', 'web-4']],
  ])('%s keeps only the rows it takes', (_name, filter, ids) => {
    expect(instancePlaceholder(previous, filter)?.items.map((i) => i.instanceId)).toEqual(ids);
  });
  it('nothing before: nothing to show', () => {
    expect(instancePlaceholder(undefined, EMPTY_INSTANCE_FILTER)).toBeUndefined();
  });
});
