import type { Provider } from '@nestjs/common';
import type { SyncConfig } from '../config';
import { fleetProviders } from './fleet.providers';
import { LEADER_MEMBERS } from './fleet.service';
import type { LeaderMember } from './leader-config';

// FLEETWATCH_ROLE and FLEETWATCH_LEADER_CONFIG (SPEC §1 roles, §8): a member site polls no member, so its leader
// configuration is not read at all — a secret variable it names need not be set there (FleetService warns at boot).

const membersOf = (providers: Provider[]): LeaderMember[] | undefined =>
  providers.find(
    (p): p is { provide: symbol; useValue: LeaderMember[] } =>
      typeof p === 'object' && 'provide' in p && p.provide === LEADER_MEMBERS,
  )?.useValue;

const leaderConfig = JSON.stringify([
  { name: 'eu', url: 'http://127.0.0.1:1', credentials: { type: 'token', tokenEnv: 'FW_TEST_EU_TOKEN' } },
]);

it('a member site does not read FLEETWATCH_LEADER_CONFIG: no member, and no secret it names is needed', () => {
  const config = { role: 'member', leaderConfig } as SyncConfig;
  expect(membersOf(fleetProviders(config, {}))).toEqual([]);
});

it.each(['standalone', 'leader'] as const)('a %s site reads it', (role) => {
  const config = { role, leaderConfig } as SyncConfig;
  const members = membersOf(fleetProviders(config, { FW_TEST_EU_TOKEN: 'secret' }));
  expect(members?.map((m) => m.name)).toEqual(['eu']);
  expect(members?.[0].authorization()).toBe('Bearer secret');
});
