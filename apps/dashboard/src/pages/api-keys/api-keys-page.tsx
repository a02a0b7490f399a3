import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { UserRole, type ApiKeyView, type CreateApiKeyResponse } from '@fleetwatch/contracts';
import {
  Button,
  Card,
  Checkbox,
  ErrorNote,
  PageHeader,
  RelativeTime,
  Table,
  TextAreaField,
  TextField,
} from '@fleetwatch/ui';
import { ApiError } from '../../api/client';
import { adminKeys, createApiKey, fetchApiKeys, fetchUsers, revokeApiKey } from '../../api/admin-queries';
import { useSession } from '../../session';
import { roleAtLeast } from '../../roles';
import {
  apiKeyErrorsFrom,
  draftToBody,
  mayManageKey,
  NEW_API_KEY,
  SCOPES,
  validateApiKey,
  type ApiKeyDraft,
  type ApiKeyErrors,
} from './api-key-form';
import './api-keys.css';

/**
 * API keys (`/api/v1/api-keys`): the unrevoked keys by prefix (never the key), a form to create one —
 * the key is shown once, in this page's memory only, with a copy button — and revoke (after a
 * confirmation). Operators and admins; scopes stronger than the signed-in role are disabled.
 */
export function ApiKeysPage() {
  const { user } = useSession();
  const role = user?.role ?? UserRole.Viewer;
  if (!roleAtLeast(role, UserRole.Operator))
    return (
      <>
        <PageHeader title="API keys" />
        <p className="fw-alert" role="alert">
          Only operators and admins manage API keys; you are signed in with the {role} role.
        </p>
      </>
    );
  return <ApiKeys role={role} />;
}

function ApiKeys({ role }: { role: UserRole }) {
  const queryClient = useQueryClient();
  const keysList = useQuery({ queryKey: adminKeys.apiKeys(), queryFn: ({ signal }) => fetchApiKeys(signal) });
  // Who created a key: a name for admins (who may list users), the id otherwise.
  const users = useQuery({
    queryKey: adminKeys.users(),
    queryFn: ({ signal }) => fetchUsers(signal),
    enabled: role === UserRole.Admin,
  });
  const names = new Map((users.data ?? []).map((u) => [u.id, u.username]));
  const { user } = useSession();

  const [draft, setDraft] = useState<ApiKeyDraft>(NEW_API_KEY);
  const [errors, setErrors] = useState<ApiKeyErrors>({});
  const [created, setCreated] = useState<CreateApiKeyResponse | null>(null);

  const create = useMutation({
    mutationFn: createApiKey,
    onSuccess: (answer) => {
      setCreated(answer);
      setDraft(NEW_API_KEY);
      setErrors({});
      void queryClient.invalidateQueries({ queryKey: adminKeys.apiKeys() });
    },
    onError: (err) => setErrors(err instanceof ApiError ? apiKeyErrorsFrom(err) : { form: (err as Error).message }),
  });
  const revoke = useMutation({
    mutationFn: (k: ApiKeyView) => revokeApiKey(k.id),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: adminKeys.apiKeys() }),
  });

  const set = <K extends keyof ApiKeyDraft>(k: K, v: ApiKeyDraft[K]) => {
    setErrors((e) => {
      const next = { ...e };
      delete next[k];
      delete next.form;
      return next;
    });
    setDraft((d) => ({ ...d, [k]: v }));
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = validateApiKey(draft, role);
    setErrors(found);
    if (Object.keys(found).length === 0) create.mutate(draftToBody(draft));
  };

  return (
    <>
      <PageHeader title="API keys" />
      <div className="fw-stack">
        {created && <CreatedKey created={created} onDone={() => setCreated(null)} />}
        <Card title="Keys">
          <ErrorNote error={keysList.error ?? revoke.error} />
          <Table
            caption="API keys"
            rows={keysList.data ?? []}
            rowKey={(k) => k.id}
            empty={keysList.isPending ? 'Loading…' : 'No API keys.'}
            columns={[
              { key: 'name', header: 'Name', cell: (k) => k.name },
              { key: 'prefix', header: 'Prefix', cell: (k) => <span className="fw-mono">{k.prefix}…</span> },
              { key: 'scopes', header: 'Scopes', cell: (k) => k.scopes.join(', ') },
              {
                key: 'limits',
                header: 'Only from',
                cell: (k) =>
                  [k.allowedCidrs.join(', '), k.clientCertSubject ? `cert CN=${k.clientCertSubject}` : '']
                    .filter(Boolean)
                    .join('; ') || <span className="fw-muted">anywhere</span>,
              },
              {
                key: 'by',
                header: 'Created by',
                cell: (k) =>
                  k.createdBy === null ? (
                    // Its creator deleted: the key still works (a site credential) — say whose it was, to revoke.
                    k.createdByName ? (
                      <span data-creator-deleted="true">
                        {k.createdByName} <span className="fw-muted">(deleted user)</span>
                      </span>
                    ) : (
                      '—'
                    )
                  ) : k.createdBy === user?.id ? (
                    'you'
                  ) : (
                    (names.get(k.createdBy) ??
                    k.createdByName ?? <span className="fw-mono">{k.createdBy.slice(0, 8)}</span>)
                  ),
              },
              { key: 'created', header: 'Created', cell: (k) => <RelativeTime iso={k.createdAt} /> },
              { key: 'used', header: 'Last used', cell: (k) => <RelativeTime iso={k.lastUsedAt} /> },
              {
                key: 'actions',
                header: <span className="fw-visually-hidden">Actions</span>,
                cell: (k) => {
                  const allowed = mayManageKey(role, k.scopes);
                  return (
                    <Button
                      size="small"
                      variant="danger"
                      aria-label={`Revoke ${k.name}`}
                      disabled={!allowed || (revoke.isPending && revoke.variables?.id === k.id)}
                      title={allowed ? undefined : 'Only admins revoke keys with admin or fleet scope'}
                      onClick={() => {
                        if (
                          window.confirm(
                            `Revoke the API key “${k.name}” (${k.prefix}…)? Whatever uses it is refused from now on.`,
                          )
                        )
                          revoke.mutate(k);
                      }}
                    >
                      Revoke
                    </Button>
                  );
                },
              },
            ]}
          />
        </Card>
        <Card title="New API key">
          <form className="fw-stack fw-api-key-form" onSubmit={submit} noValidate aria-label="New API key">
            <TextField
              label="Name"
              name="name"
              value={draft.name}
              error={errors.name}
              hint="What uses it, to recognise it in the list (e.g. the pusher on web-1)"
              onChange={(e) => set('name', e.target.value)}
            />
            <fieldset
              className="fw-api-key-scopes"
              aria-describedby={errors.scopes ? 'api-key-scopes-error' : undefined}
              aria-invalid={errors.scopes ? true : undefined}
            >
              <legend className="fw-field__label">Scopes</legend>
              {SCOPES.map((s) => {
                const allowed = roleAtLeast(role, s.needs);
                return (
                  <span key={s.scope} className="fw-api-key-scope">
                    <Checkbox
                      label={s.label}
                      name="scopes"
                      value={s.scope}
                      checked={draft.scopes.includes(s.scope)}
                      disabled={!allowed}
                      onChange={(e) =>
                        set(
                          'scopes',
                          e.target.checked ? [...draft.scopes, s.scope] : draft.scopes.filter((x) => x !== s.scope),
                        )
                      }
                    />
                    <span className="fw-muted">
                      {s.grants}
                      {allowed ? '' : ' (admins only)'}
                    </span>
                  </span>
                );
              })}
              {errors.scopes && (
                <span className="fw-field__error" id="api-key-scopes-error" role="alert">
                  {errors.scopes}
                </span>
              )}
            </fieldset>
            <TextAreaField
              label="Allowed networks"
              name="allowedCidrs"
              value={draft.allowedCidrs}
              error={errors.allowedCidrs}
              hint="CIDRs, one per line (e.g. 10.0.0.0/8); empty: any address"
              onChange={(e) => set('allowedCidrs', e.target.value)}
            />
            <TextField
              label="Client certificate subject"
              name="clientCertSubject"
              value={draft.clientCertSubject}
              error={errors.clientCertSubject}
              hint="The CN a client certificate must carry at status-ingest (mutual TLS); empty: none needed"
              onChange={(e) => set('clientCertSubject', e.target.value)}
            />
            {errors.form && (
              <p className="fw-alert" role="alert">
                {errors.form}
              </p>
            )}
            <div className="fw-row">
              <Button type="submit" variant="primary" disabled={create.isPending}>
                Create API key
              </Button>
            </div>
          </form>
        </Card>
      </div>
    </>
  );
}

/** The new key, once: held in this component only (gone on dismiss or reload), with a copy button. */
function CreatedKey({ created, onDone }: { created: CreateApiKeyResponse; onDone: () => void }) {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const copy = () => {
    navigator.clipboard
      .writeText(created.key)
      .then(() => setCopied('yes'))
      .catch(() => setCopied('failed'));
  };
  return (
    <section className="fw-card fw-created-key" aria-labelledby="created-key-title" data-testid="created-key">
      <h2 className="fw-card__title" id="created-key-title">
        API key “{created.name}” created
      </h2>
      <p className="fw-created-key__warning" role="alert">
        Copy the key now: this is the only time it is shown. Only its hash is stored; if it is lost, revoke it and
        create another.
      </p>
      <div className="fw-row">
        <TextField
          label="Key"
          name="created-key"
          readOnly
          value={created.key}
          className="fw-input fw-mono fw-created-key__value"
          onFocus={(e) => e.target.select()}
        />
        <Button variant="primary" onClick={copy} aria-label="Copy the key">
          Copy
        </Button>
        <span className="fw-muted" aria-live="polite">
          {copied === 'yes'
            ? 'Copied to the clipboard'
            : copied === 'failed'
              ? 'Copying failed: select and copy it'
              : ''}
        </span>
      </div>
      <p className="fw-muted">
        Scopes {created.scopes.join(', ')}; listed as <span className="fw-mono">{created.prefix}…</span>. Send it as{' '}
        <span className="fw-mono">Authorization: Bearer &lt;key&gt;</span>.
      </p>
      <Button onClick={onDone}>I have stored it — hide the key</Button>
    </section>
  );
}
