// First: loads @nestjs/common without building its unused Intl formatters (~8 MB of RSS; see the file).
import './defer-nest-intl';
import { loadConfigOrExit } from '@fleetwatch/config';
import { bootstrapService } from '@fleetwatch/observability';
import { CollectorModule } from './collector.module';
import { loadCollectorConfig } from './config';

const config = loadConfigOrExit(() => loadCollectorConfig(), 'collector');
// No boot dependencies: the collector starts at once from its stored assignment and keeps
// checking with the bus, the database and sync-orchestrator all away (SPEC §2); the bus
// connection retries in the background and says so in the log.
void bootstrapService({ module: CollectorModule.forRoot(config), config });
