import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { UserRole, type UserAdminView } from '@fleetwatch/contracts';
import { Button, Card, ErrorNote, PageHeader, RelativeTime, SelectField, Table, TextField } from '@fleetwatch/ui';
import { ApiError } from '../../api/client';
import {
  adminKeys,
  changeUserRole,
  createUser,
  deleteUser,
  fetchUsers,
  setUserDisabled,
  setUserPassword,
} from '../../api/admin-queries';
import { useSession } from '../../session';
import {
  draftToBody,
  NEW_USER,
  ROLES,
  rowRules,
  userErrorsFrom,
  validateNewUser,
  validatePassword,
  type NewUserDraft,
  type UserErrors,
} from './user-form';
import './users.css';

type RowAction = 'role' | 'disabled' | 'delete';
interface RowError {
  id: string;
  action: RowAction;
  message: string;
}

const failure = (err: unknown) =>
  err instanceof ApiError ? err : { status: 0, message: (err as Error).message, issues: [] as const };

/**
 * Users (`/api/v1/users`, admins only): list with role and state, create, change role, reset password,
 * disable / enable and delete. What the gateway would refuse (yourself, the last enabled admin) is
 * disabled with the reason; a refusal that comes anyway (403/409/422) shows beside the control it names.
 */
export function UsersPage() {
  const { user } = useSession();
  if (user?.role !== UserRole.Admin)
    return (
      <>
        <PageHeader title="Users" />
        <p className="fw-alert" role="alert">
          Only admins manage users; you are signed in with the {user?.role ?? 'no'} role.
        </p>
      </>
    );
  return <Users meId={user.id} />;
}

function Users({ meId }: { meId: string }) {
  const queryClient = useQueryClient();
  const users = useQuery({ queryKey: adminKeys.users(), queryFn: ({ signal }) => fetchUsers(signal) });
  const all = users.data ?? [];
  const refresh = () => void queryClient.invalidateQueries({ queryKey: adminKeys.users() });

  const [rowError, setRowError] = useState<RowError | null>(null);
  const onRowError = (id: string, action: RowAction) => (err: unknown) =>
    setRowError({ id, action, message: failure(err).message });
  const errorFor = (id: string, action: RowAction) =>
    rowError?.id === id && rowError.action === action ? rowError.message : null;

  const role = useMutation({
    mutationFn: ({ u, to }: { u: UserAdminView; to: UserRole }) => changeUserRole(u.id, to),
    onMutate: () => setRowError(null),
    onError: (err, { u }) => onRowError(u.id, 'role')(err),
    onSettled: refresh,
  });
  const disabled = useMutation({
    mutationFn: (u: UserAdminView) => setUserDisabled(u.id, !u.disabled),
    onMutate: () => setRowError(null),
    onError: (err, u) => onRowError(u.id, 'disabled')(err),
    onSettled: refresh,
  });
  const remove = useMutation({
    mutationFn: (u: UserAdminView) => deleteUser(u.id),
    onMutate: () => setRowError(null),
    onError: (err, u) => onRowError(u.id, 'delete')(err),
    onSettled: refresh,
  });

  const [resetting, setResetting] = useState<UserAdminView | null>(null);

  return (
    <>
      <PageHeader title="Users">
        <span className="fw-muted">{users.data ? `${all.length} user${all.length === 1 ? '' : 's'}` : ''}</span>
      </PageHeader>
      <div className="fw-stack">
        <Card title="Users">
          <ErrorNote error={users.error} />
          <Table
            caption="Users"
            rows={all}
            rowKey={(u) => u.id}
            empty={users.isPending ? 'Loading…' : 'No users.'}
            columns={[
              {
                key: 'name',
                header: 'Username',
                cell: (u) => (
                  <>
                    {u.username}
                    {u.id === meId && <span className="fw-muted"> (you)</span>}
                  </>
                ),
              },
              {
                key: 'role',
                header: 'Role',
                cell: (u) => {
                  const rules = rowRules(meId, u, all);
                  const error = errorFor(u.id, 'role');
                  return (
                    <span className="fw-user-cell">
                      <select
                        className="fw-select fw-user-role"
                        aria-label={`Role of ${u.username}`}
                        value={u.role}
                        disabled={rules.role !== null || role.isPending}
                        title={rules.role ?? undefined}
                        aria-invalid={error ? true : undefined}
                        aria-describedby={error ? `user-${u.id}-role-error` : undefined}
                        onChange={(e) => {
                          const to = e.target.value as UserRole;
                          const note =
                            u.id === meId ? 'You will be signed out.' : `${u.username}'s sessions are ended.`;
                          if (window.confirm(`Make ${u.username} ${to}? ${note}`)) role.mutate({ u, to });
                        }}
                      >
                        {ROLES.map((r) => (
                          <option key={r.value} value={r.value}>
                            {r.value}
                          </option>
                        ))}
                      </select>
                      {error && (
                        <span className="fw-field__error" id={`user-${u.id}-role-error`} role="alert">
                          {error}
                        </span>
                      )}
                    </span>
                  );
                },
              },
              {
                key: 'state',
                header: 'State',
                cell: (u) =>
                  u.disabled ? (
                    <span className="fw-user-disabled">
                      disabled <RelativeTime iso={u.disabledAt} />
                    </span>
                  ) : (
                    'enabled'
                  ),
              },
              { key: 'created', header: 'Created', cell: (u) => <RelativeTime iso={u.createdAt} /> },
              { key: 'updated', header: 'Changed', cell: (u) => <RelativeTime iso={u.updatedAt} /> },
              {
                key: 'actions',
                header: <span className="fw-visually-hidden">Actions</span>,
                cell: (u) => {
                  const rules = rowRules(meId, u, all);
                  const error = errorFor(u.id, 'disabled') ?? errorFor(u.id, 'delete');
                  const errorId = error ? `user-${u.id}-action-error` : undefined;
                  return (
                    <span className="fw-user-cell">
                      <span className="fw-row">
                        <Button
                          size="small"
                          aria-label={`Reset the password of ${u.username}`}
                          onClick={() => setResetting(u)}
                        >
                          Reset password
                        </Button>
                        <Button
                          size="small"
                          aria-label={`${u.disabled ? 'Enable' : 'Disable'} ${u.username}`}
                          disabled={rules.disable !== null || disabled.isPending}
                          title={rules.disable ?? undefined}
                          aria-describedby={errorFor(u.id, 'disabled') ? errorId : undefined}
                          onClick={() => {
                            if (
                              u.disabled ||
                              window.confirm(`Disable ${u.username}? Sign-in is refused and their sessions end.`)
                            )
                              disabled.mutate(u);
                          }}
                        >
                          {u.disabled ? 'Enable' : 'Disable'}
                        </Button>
                        <Button
                          size="small"
                          variant="danger"
                          aria-label={`Delete ${u.username}`}
                          disabled={rules.remove !== null || remove.isPending}
                          title={rules.remove ?? undefined}
                          aria-describedby={errorFor(u.id, 'delete') ? errorId : undefined}
                          onClick={() => {
                            if (window.confirm(`Delete the user ${u.username}? This cannot be undone.`))
                              remove.mutate(u);
                          }}
                        >
                          Delete
                        </Button>
                      </span>
                      {error && (
                        <span className="fw-field__error" id={errorId} role="alert">
                          {error}
                        </span>
                      )}
                    </span>
                  );
                },
              },
            ]}
          />
        </Card>
        {resetting && (
          <ResetPassword
            key={resetting.id}
            user={resetting}
            onDone={() => {
              setResetting(null);
              refresh();
            }}
          />
        )}
        <NewUser onCreated={refresh} />
      </div>
    </>
  );
}

function ResetPassword({ user, onDone }: { user: UserAdminView; onDone: () => void }) {
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<UserErrors>({});
  const [done, setDone] = useState(false);
  const save = useMutation({
    mutationFn: () => setUserPassword(user.id, password),
    onSuccess: () => {
      setDone(true);
      setPassword('');
    },
    onError: (err) => setErrors(userErrorsFrom(failure(err), 'password')),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setDone(false);
    const problem = validatePassword(password);
    setErrors(problem ? { password: problem } : {});
    if (!problem) save.mutate();
  };
  return (
    <Card title={`Reset the password of ${user.username}`}>
      <form
        className="fw-stack fw-user-form"
        onSubmit={submit}
        noValidate
        aria-label={`Reset password of ${user.username}`}
      >
        <TextField
          label="New password"
          name="new-password"
          type="password"
          autoComplete="new-password"
          autoFocus
          value={password}
          error={errors.password}
          hint={`At least 8 characters. Every session of ${user.username} ends.`}
          onChange={(e) => {
            setErrors({});
            setPassword(e.target.value);
          }}
        />
        {errors.form && (
          <p className="fw-alert" role="alert">
            {errors.form}
          </p>
        )}
        {done && (
          <p className="fw-muted" role="status">
            Password set; {user.username}&apos;s sessions were ended.
          </p>
        )}
        <div className="fw-row">
          <Button type="submit" variant="primary" disabled={save.isPending}>
            Set password
          </Button>
          <Button onClick={onDone}>Close</Button>
        </div>
      </form>
    </Card>
  );
}

function NewUser({ onCreated }: { onCreated: () => void }) {
  const [draft, setDraft] = useState<NewUserDraft>(NEW_USER);
  const [errors, setErrors] = useState<UserErrors>({});
  const [created, setCreated] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: createUser,
    onSuccess: (u) => {
      setCreated(u.username);
      setDraft(NEW_USER);
      onCreated();
    },
    onError: (err) => setErrors(userErrorsFrom(failure(err), 'create')),
  });
  const set = <K extends keyof NewUserDraft>(k: K, v: NewUserDraft[K]) => {
    setErrors((e) => {
      const next = { ...e };
      delete next[k];
      delete next.form;
      return next;
    });
    setCreated(null);
    setDraft((d) => ({ ...d, [k]: v }));
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = validateNewUser(draft);
    setErrors(found);
    if (Object.keys(found).length === 0) create.mutate(draftToBody(draft));
  };
  return (
    <Card title="New user">
      <form className="fw-stack fw-user-form" onSubmit={submit} noValidate aria-label="New user">
        <TextField
          label="Username"
          name="username"
          autoComplete="off"
          value={draft.username}
          error={errors.username}
          hint="Letters, digits and . _ @ -"
          onChange={(e) => set('username', e.target.value)}
        />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          value={draft.password}
          error={errors.password}
          hint="At least 8 characters"
          onChange={(e) => set('password', e.target.value)}
        />
        <SelectField
          label="Role"
          name="role"
          value={draft.role}
          error={errors.role}
          options={ROLES}
          onChange={(e) => set('role', e.target.value as UserRole)}
        />
        {errors.form && (
          <p className="fw-alert" role="alert">
            {errors.form}
          </p>
        )}
        {created && (
          <p className="fw-muted" role="status">
            User {created} created.
          </p>
        )}
        <div className="fw-row">
          <Button type="submit" variant="primary" disabled={create.isPending}>
            Create user
          </Button>
        </div>
      </form>
    </Card>
  );
}
