import { describe, expect, it } from 'vitest';
import { fleetKeys } from './fleet-queries';

describe('fleetKeys', () => {
  it("a member named `own` does not share the site's own snapshot entry (two requests, two keys)", () => {
    expect(JSON.stringify(fleetKeys.snapshot('own'))).not.toBe(JSON.stringify(fleetKeys.ownSnapshot()));
    expect(JSON.stringify(fleetKeys.snapshot('a'))).not.toBe(JSON.stringify(fleetKeys.snapshot('b')));
  });
});
