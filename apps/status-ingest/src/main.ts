import { loadConfigOrExit } from '@fleetwatch/config';
import { loadIngestConfig } from './config';
import { startStatusIngest } from './status-ingest.bootstrap';

void startStatusIngest(loadConfigOrExit(() => loadIngestConfig(), 'status-ingest'));
