import { ApiKeyScope, createApiKeyRequestSchema, UserRole, type CreateApiKeyRequest } from '@fleetwatch/contracts';
import { errorsFrom, zodIssues, type Errors } from '../alerts/form-model';
import { roleAtLeast } from '../../roles';

// The API key form ↔ `POST /api/v1/api-keys` (createApiKeyRequestSchema, the contract the gateway parses
// with), and which scopes the signed-in role may grant: nobody mints a key stronger than themselves (the
// gateway's rule — `admin` and `fleet` need an admin, the others an operator; the gateway answers 403
// otherwise, and that answer lands on the scopes too).

export type ApiKeyField = 'name' | 'scopes' | 'allowedCidrs' | 'clientCertSubject';
export type ApiKeyErrors = Errors<ApiKeyField>;

export interface ApiKeyDraft {
  name: string;
  scopes: ApiKeyScope[];
  /** CIDRs, one per line or comma-separated; empty: any address. */
  allowedCidrs: string;
  /** Subject CN a client certificate must carry at status-ingest; empty: none needed. */
  clientCertSubject: string;
}

export const NEW_API_KEY: ApiKeyDraft = {
  name: '',
  scopes: [ApiKeyScope.Ingest],
  allowedCidrs: '',
  clientCertSubject: '',
};

/** Every scope the API accepts, in the order the form lists them, with what each grants. */
export const SCOPES: readonly { scope: ApiKeyScope; label: string; grants: string; needs: UserRole }[] = [
  {
    scope: ApiKeyScope.Ingest,
    label: 'ingest',
    grants: 'push status updates to status-ingest',
    needs: UserRole.Operator,
  },
  { scope: ApiKeyScope.Read, label: 'read', grants: 'read the gateway as a viewer', needs: UserRole.Operator },
  { scope: ApiKeyScope.Write, label: 'write', grants: 'use the gateway as an operator', needs: UserRole.Operator },
  { scope: ApiKeyScope.Admin, label: 'admin', grants: 'use the gateway as an admin', needs: UserRole.Admin },
  { scope: ApiKeyScope.Fleet, label: 'fleet', grants: 'a leader site polling this one', needs: UserRole.Admin },
];

/** Whether `role` may create or revoke a key with these scopes. */
export function mayManageKey(role: UserRole, scopes: readonly string[]): boolean {
  const needed = scopes.some((s) => s === ApiKeyScope.Admin || s === ApiKeyScope.Fleet)
    ? UserRole.Admin
    : UserRole.Operator;
  return roleAtLeast(role, needed);
}

const splitCidrs = (text: string) =>
  text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);

/** The request body; optional parts only when given. */
export function draftToBody(d: ApiKeyDraft): CreateApiKeyRequest {
  const body: CreateApiKeyRequest = { name: d.name.trim(), scopes: [...d.scopes] };
  const cidrs = splitCidrs(d.allowedCidrs);
  if (cidrs.length) body.allowedCidrs = cidrs;
  if (d.clientCertSubject.trim()) body.clientCertSubject = d.clientCertSubject.trim();
  return body;
}

function route(segments: string[]): { field: ApiKeyField | 'form'; prefix?: string } {
  const [head, index] = segments;
  if (head === 'allowedCidrs' && index !== undefined)
    return { field: 'allowedCidrs', prefix: `entry ${Number(index) + 1}` };
  if (head === 'name' || head === 'scopes' || head === 'allowedCidrs' || head === 'clientCertSubject')
    return { field: head };
  return { field: 'form' };
}

/** The contract's messages, and the role rule, before anything is sent. */
export function validateApiKey(d: ApiKeyDraft, role: UserRole): ApiKeyErrors {
  const r = createApiKeyRequestSchema.safeParse(draftToBody(d));
  const errors = r.success ? {} : errorsFrom(zodIssues(r.error.issues), route);
  if (!errors.scopes && !mayManageKey(role, d.scopes))
    errors.scopes = `only admins may grant ${d.scopes.filter((s) => s === 'admin' || s === 'fleet').join(' and ')}`;
  return errors;
}

/** The API's refusal on the fields it names: issues (400/422) by path, 403 on the scopes, anything else on the form. */
export function apiKeyErrorsFrom(e: {
  status: number;
  message: string;
  issues: readonly { path: string; message: string }[];
}): ApiKeyErrors {
  if (e.issues.length) return errorsFrom(e.issues, route);
  if (e.status === 403) return { scopes: e.message };
  return { form: e.message };
}
