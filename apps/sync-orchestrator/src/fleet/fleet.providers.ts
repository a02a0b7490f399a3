import type { Provider } from '@nestjs/common';
import { loadConfigOrExit } from '@fleetwatch/config';
import { FleetSitesRepository } from '@fleetwatch/persistence';
import type { SyncConfig } from '../config';
import { FleetService, LEADER_MEMBERS, SYNC_CONFIG } from './fleet.service';
import { loadLeaderConfig } from './leader-config';

/** The fleet capability's providers; FLEETWATCH_LEADER_CONFIG is read (and its secrets resolved) here, once. */
export function fleetProviders(config: SyncConfig, env: Record<string, string | undefined> = process.env): Provider[] {
  const members = loadConfigOrExit(() => loadLeaderConfig(config.leaderConfig, env), 'sync-orchestrator');
  return [
    { provide: SYNC_CONFIG, useValue: config },
    { provide: LEADER_MEMBERS, useValue: members },
    FleetSitesRepository,
    FleetService,
  ];
}
