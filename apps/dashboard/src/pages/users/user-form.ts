import {
  createUserRequestSchema,
  setPasswordRequestSchema,
  UserRole,
  type CreateUserRequest,
  type UserAdminView,
} from '@fleetwatch/contracts';
import { errorsFrom, zodIssues, type Errors } from '../alerts/form-model';

// The users page's forms ↔ the gateway's users routes (the contract's schemas, as the gateway parses
// them), the API's refusals on the fields they name, and which row actions the page offers: nobody
// disables or deletes themselves, and the last enabled admin is never demoted, disabled or deleted
// (the gateway answers 409 to each; the page says why before anyone tries).

export type UserField = 'username' | 'password' | 'role';
export type UserErrors = Errors<UserField>;

export interface NewUserDraft {
  username: string;
  password: string;
  role: UserRole;
}

export const NEW_USER: NewUserDraft = { username: '', password: '', role: UserRole.Viewer };

export const ROLES: readonly { value: UserRole; label: string }[] = [
  { value: UserRole.Viewer, label: 'viewer — reads everything' },
  { value: UserRole.Operator, label: 'operator — also changes checks, alerts, keys' },
  { value: UserRole.Admin, label: 'admin — also manages users' },
];

interface ApiFailure {
  status: number;
  message: string;
  issues: readonly { path: string; message: string }[];
}

function route(segments: string[]): { field: UserField | 'form' } {
  const [head] = segments;
  return head === 'username' || head === 'password' || head === 'role' ? { field: head } : { field: 'form' };
}

export const draftToBody = (d: NewUserDraft): CreateUserRequest => ({
  username: d.username.trim(),
  password: d.password,
  role: d.role,
});

/** The contract's messages before anything is sent. */
export function validateNewUser(d: NewUserDraft): UserErrors {
  const r = createUserRequestSchema.safeParse(draftToBody(d));
  return r.success ? {} : errorsFrom(zodIssues(r.error.issues), route);
}

export function validatePassword(password: string): string | null {
  const r = setPasswordRequestSchema.safeParse({ password });
  return r.success ? null : r.error.issues.map((i) => i.message).join('; ');
}

/**
 * The API's refusal on the field it names: issues by path (400/422); a 409 on create is the username
 * (taken); a 403 (the signed-in user is no admin any more) and the rest on the form.
 */
export function userErrorsFrom(e: ApiFailure, action: 'create' | 'password' | 'role'): UserErrors {
  if (e.issues.length) return errorsFrom(e.issues, route);
  if (e.status === 409 && action === 'create') return { username: e.message };
  if (e.status === 403) return { form: `Not allowed: ${e.message}` };
  if (action === 'password' || action === 'role') return { [action]: e.message };
  return { form: e.message };
}

export interface RowRules {
  /** Why the role may not change (null: it may). */
  role: string | null;
  disable: string | null;
  remove: string | null;
}

/** What the page offers on `user`'s row to the signed-in admin `me`, given every user listed. */
export function rowRules(meId: string, user: UserAdminView, all: readonly UserAdminView[]): RowRules {
  const self = user.id === meId;
  const lastAdmin =
    user.role === UserRole.Admin &&
    !user.disabled &&
    !all.some((u) => u.id !== user.id && u.role === UserRole.Admin && !u.disabled);
  const last = 'the last enabled admin';
  return {
    role: lastAdmin ? `${last} stays admin` : null,
    disable: user.disabled ? null : self ? 'you cannot disable yourself' : lastAdmin ? `${last} stays enabled` : null,
    remove: self ? 'you cannot delete yourself' : lastAdmin ? `${last} cannot be deleted` : null,
  };
}
