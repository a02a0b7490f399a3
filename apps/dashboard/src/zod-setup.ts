import { config } from 'zod';

// Before any schema runs: zod would otherwise probe `new Function` once to pick its fast
// path, and under the page's CSP (no 'unsafe-eval') that probe is a reported violation.
config({ jitless: true });
