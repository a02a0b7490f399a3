// Jest setupFiles of the integration projects: before a test file loads, point its
// testEnv() at its worker's own database, vhost and key prefix (setUpTestRun made one set
// per worker), so files that jest runs side by side never share them.
import { useWorkerResources } from '../run-resources';

useWorkerResources(Number(process.env['JEST_WORKER_ID'] ?? '1'));
