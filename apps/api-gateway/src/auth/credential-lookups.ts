import { BoundedLookups } from '@fleetwatch/persistence';

/**
 * The database lookups of credentials — session tokens (read every request) and API keys not cached — bounded in time
 * and number, shared by this replica (BoundedLookups; GATEWAY_CREDENTIAL_LOOKUP_*).
 */
export class CredentialLookups extends BoundedLookups {}
