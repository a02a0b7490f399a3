import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useNavigate, useParams } from 'react-router';
import type { CheckView } from '@fleetwatch/contracts';
import { Button, Card, Checkbox, ErrorNote, PageHeader, SelectField, TextAreaField, TextField } from '@fleetwatch/ui';
import { api, ApiError, enc } from '../../api/client';
import { fetchCheck, keys } from '../../api/queries';
import {
  draftFromCheck,
  draftToInput,
  errorsFromIssues,
  FORM_TYPES,
  NEW_DRAFT,
  validateDraft,
  type CheckDraft,
  type FieldErrors,
} from './check-form-model';
import { useStoredDraft } from '../../stored-draft';
import { WriteGate } from '../../read-only';

/** Create (`/checks/new`) or edit (`/checks/:id`) a check. */
export function CheckEditPage() {
  const id = useParams()['id'];
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const stored = useQuery({
    queryKey: keys.check(id ?? ''),
    queryFn: ({ signal }) => fetchCheck(id ?? '', signal),
    enabled: id !== undefined,
  });
  const [draft, setDraft, base] = useStoredDraft<CheckView, CheckDraft>(stored.data, draftFromCheck, NEW_DRAFT);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [touched, setTouched] = useState(false);

  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      id
        ? api<CheckView>(`/api/v1/checks/${enc(id)}`, {
            method: 'PUT',
            body,
            headers: base ? { 'if-match': `"${base.version}"` } : {},
          })
        : api<CheckView>('/api/v1/checks', { method: 'POST', body }),
    onSuccess: async (saved) => {
      await queryClient.invalidateQueries({ queryKey: keys.checks() });
      queryClient.setQueryData(keys.check(saved.id), saved);
      navigate('/checks');
    },
    onError: (err) => {
      if (err instanceof ApiError && err.issues.length) setErrors(errorsFromIssues(err.issues));
      else if (err instanceof ApiError && err.status === 409 && err.currentVersion !== null)
        setErrors({ form: 'Someone changed this check meanwhile: reload it, then apply your change again.' });
      else setErrors({ form: (err as Error).message });
    },
  });

  // Inline validation once a first save was tried: messages follow each change.
  const set = <K extends keyof CheckDraft>(k: K, v: CheckDraft[K]) => {
    const next = { ...draft, [k]: v };
    setDraft(next);
    if (touched) setErrors(validateDraft(next));
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    const found = validateDraft(draft);
    setErrors(found);
    if (Object.keys(found).length === 0) save.mutate(draftToInput(draft));
  };

  const isFormType = (FORM_TYPES as readonly string[]).includes(draft.type);
  const text = (k: Exclude<keyof FieldErrors, 'form'>, label: string, extra: Record<string, unknown> = {}) => (
    <TextField
      label={label}
      name={k}
      value={draft[k] as string}
      error={errors[k]}
      onChange={(e) => set(k, e.target.value as never)}
      {...extra}
    />
  );

  return (
    <>
      <PageHeader title={id ? `Edit ${stored.data?.name ?? 'check'}` : 'New check'} />
      <ErrorNote error={stored.error} />
      <Card>
        <form className="fw-stack fw-check-form" onSubmit={submit} noValidate aria-label="Check">
          <WriteGate>
            <div className="fw-grid">
              {text('name', 'Name', { required: true })}
              <SelectField
                label="Type"
                name="type"
                value={draft.type}
                disabled={id !== undefined}
                hint={id ? 'A check keeps its type.' : undefined}
                onChange={(e) => set('type', e.target.value)}
                options={(isFormType ? FORM_TYPES : [draft.type]).map((t) => ({ value: t, label: t }))}
              />
            </div>
            {draft.type === 'http' && (
              <div className="fw-grid">
                {text('url', 'URL', { type: 'url' })}
                <SelectField
                  label="Method"
                  name="method"
                  value={draft.method}
                  onChange={(e) => set('method', e.target.value)}
                  options={['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].map((m) => ({
                    value: m,
                    label: m,
                  }))}
                />
              </div>
            )}
            {draft.type === 'http' && (
              <TextAreaField
                label="Headers"
                name="headers"
                hint="One `Name: value` per line. Credential headers (Authorization, Cookie, X-Api-Key, names with token, secret or password) are write-only: stored for the probe, never shown again."
                value={draft.headers}
                error={errors.headers}
                onChange={(e) => set('headers', e.target.value)}
              />
            )}
            {draft.type === 'http' && draft.storedSecrets.length > 0 && (
              <fieldset className="fw-fieldset fw-stack" aria-label="Credential headers">
                <legend>Credential headers (write-only: never shown; leave empty to keep the stored value)</legend>
                <div className="fw-grid">
                  {draft.storedSecrets.map((name) => {
                    const removing = draft.removeSecrets[name] === true;
                    return (
                      <div key={name} className="fw-stack">
                        <TextField
                          label={name}
                          name={`secret-header-${name}`}
                          type="password"
                          autoComplete="new-password"
                          data-secret-header={name}
                          hint={removing ? 'Stored: set, not shown · removed on save' : 'Stored: set, not shown'}
                          value={draft.secretValues[name] ?? ''}
                          disabled={removing}
                          onChange={(e) => set('secretValues', { ...draft.secretValues, [name]: e.target.value })}
                        />
                        <Checkbox
                          label={`Remove the stored ${name}`}
                          checked={removing}
                          onChange={(e) => set('removeSecrets', { ...draft.removeSecrets, [name]: e.target.checked })}
                        />
                      </div>
                    );
                  })}
                </div>
              </fieldset>
            )}
            {(draft.type === 'tcp' || draft.type === 'icmp') && (
              <div className="fw-grid">
                {text('host', 'Host')}
                {draft.type === 'tcp' && text('port', 'Port', { inputMode: 'numeric' })}
              </div>
            )}
            {draft.type === 'dns' && text('query', 'Name to resolve')}
            {!isFormType && (
              <p className="fw-muted">The {draft.type} check’s own fields are kept as they are; edit them as code.</p>
            )}
            {/* A heartbeat is not run: it is due every period plus its grace (kept as they are), so no interval here. */}
            {draft.type !== 'push' && (
              <div className="fw-grid">
                {text('intervalSeconds', 'Interval (seconds)', { inputMode: 'numeric' })}
                {text('timeoutSeconds', 'Timeout (seconds)', { inputMode: 'decimal' })}
                {text('retries', 'Retries', { inputMode: 'numeric' })}
              </div>
            )}
            <div className="fw-grid">
              {text('tags', 'Tags', { hint: 'comma-separated' })}
              {text('locations', 'Locations', { hint: 'comma-separated; empty: every location' })}
            </div>
            <TextAreaField
              label="Conditions"
              name="conditions"
              hint="One CEL expression per line; all must hold for UP (e.g. status == 200)"
              value={draft.conditions}
              error={errors.conditions}
              onChange={(e) => set('conditions', e.target.value)}
            />
            {text('description', 'Description')}
            <Checkbox label="Paused" checked={draft.paused} onChange={(e) => set('paused', e.target.checked)} />
            {errors.form && (
              <p className="fw-alert" role="alert">
                {errors.form}
              </p>
            )}
            <div className="fw-row">
              <Button type="submit" variant="primary" disabled={save.isPending || (id !== undefined && !base)}>
                {save.isPending ? 'Saving…' : id ? 'Save' : 'Create check'}
              </Button>
              <Button onClick={() => navigate('/checks')}>Cancel</Button>
            </div>
          </WriteGate>
        </form>
      </Card>
    </>
  );
}
