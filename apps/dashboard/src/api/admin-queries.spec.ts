import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InstanceKind, TargetStatus } from '@fleetwatch/contracts';
import { EMPTY_INSTANCE_FILTER, instanceApiQuery, type InstanceFilter } from '../pages/instances/instance-filter';
import { adminKeys, instanceRemovalPath } from './admin-queries';

// The instances list's query key must carry every input its fetch sends: a filter change that the key missed kept
// the old list on the page (a Kind box ticked showed the instances of every kind until the next 10 s refresh).
const filterArb: fc.Arbitrary<InstanceFilter> = fc.record({
  status: fc.subarray(Object.values(TargetStatus)),
  kind: fc.subarray(Object.values(InstanceKind)),
  tag: fc.constantFrom('', 'prod', 'dev'),
  location: fc.constantFrom('', 'lab-1'),
  q: fc.constantFrom('', 'web'),
});

describe('adminKeys.instances', () => {
  it('differs whenever the request the list sends differs', () => {
    fc.assert(
      fc.property(filterArb, filterArb, (a, b) => {
        if (instanceApiQuery(a).toString() === instanceApiQuery(b).toString()) return;
        expect(JSON.stringify(adminKeys.instances(a))).not.toBe(JSON.stringify(adminKeys.instances(b)));
      }),
    );
  });

  it('a kind ticked is another list', () => {
    const pods = { ...EMPTY_INSTANCE_FILTER, kind: [InstanceKind.Pod] };
    expect(JSON.stringify(adminKeys.instances(pods))).not.toBe(
      JSON.stringify(adminKeys.instances(EMPTY_INSTANCE_FILTER)),
    );
  });
});

describe('instanceRemovalPath', () => {
  it("a pushed instance's own route, the whole id encoded; none for a host or a check", () => {
    expect(instanceRemovalPath('instance:db/backup:7')).toBe('/api/v1/instances/db%2Fbackup%3A7');
    expect(instanceRemovalPath('host:rack-2/gpu 9')).toBeNull();
    expect(instanceRemovalPath('check:0b6f6f0e-4a55-4f57-a0c8-0d5d1f2b1f6a')).toBeNull();
  });
});
