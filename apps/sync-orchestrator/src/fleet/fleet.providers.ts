import type { Provider } from '@nestjs/common';
import { loadConfigOrExit } from '@fleetwatch/config';
import { FleetSitesRepository } from '@fleetwatch/persistence';
import type { SyncConfig } from '../config';
import { FleetService, LEADER_MEMBERS, SYNC_CONFIG } from './fleet.service';
import { loadLeaderConfig } from './leader-config';

/**
 * The fleet capability's providers; FLEETWATCH_LEADER_CONFIG is read (and its secrets resolved) here, once — except on a
 * member site (FLEETWATCH_ROLE=member), which polls no member: its leader configuration is not read (FleetService warns).
 */
export function fleetProviders(config: SyncConfig, env: Record<string, string | undefined> = process.env): Provider[] {
  const members =
    config.role === 'member'
      ? []
      : loadConfigOrExit(() => loadLeaderConfig(config.leaderConfig, env), 'sync-orchestrator');
  return [
    { provide: SYNC_CONFIG, useValue: config },
    { provide: LEADER_MEMBERS, useValue: members },
    FleetSitesRepository,
    FleetService,
  ];
}
