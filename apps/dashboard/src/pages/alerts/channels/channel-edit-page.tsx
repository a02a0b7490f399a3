import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useNavigate, useParams } from 'react-router';
import { CHANNEL_TYPES, type Channel, type ChannelType } from '@fleetwatch/contracts';
import { Button, Card, Checkbox, ErrorNote, PageHeader, SelectField, TextAreaField, TextField } from '@fleetwatch/ui';
import { api, ApiError, enc } from '../../../api/client';
import { alertKeys, fetchChannel, ifMatch } from '../../../api/alert-queries';
import { AlertsNav } from '../alerts-nav';
import {
  draftFromChannel,
  draftToInput,
  errorsFromIssues,
  NEW_CHANNEL,
  SECRET_LABELS,
  secretFieldsOf,
  storedSecret,
  validateChannel,
  type ChannelDraft,
  type ChannelErrors,
  type ChannelField,
} from './channel-form-model';
import { useStoredDraft } from '../../../stored-draft';
import { WriteGate } from '../../../read-only';

/** Create (`/alerts/channels/new`) or edit (`/alerts/channels/:id`) a notification channel. */
export function ChannelEditPage() {
  const id = useParams()['id'];
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const stored = useQuery({
    queryKey: alertKeys.channel(id ?? ''),
    queryFn: ({ signal }) => fetchChannel(id ?? '', signal),
    enabled: id !== undefined,
  });
  const [draft, setDraft, base] = useStoredDraft(stored.data, draftFromChannel, NEW_CHANNEL);
  const [errors, setErrors] = useState<ChannelErrors>({});
  const [touched, setTouched] = useState(false);

  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      id
        ? api<Channel>(`/api/v1/channels/${enc(id)}`, { method: 'PUT', body, headers: ifMatch(base?.version) })
        : api<Channel>('/api/v1/channels', { method: 'POST', body }),
    onSuccess: async (saved) => {
      await queryClient.invalidateQueries({ queryKey: alertKeys.channels() });
      queryClient.setQueryData(alertKeys.channel(saved.id), saved);
      navigate('/alerts/channels');
    },
    onError: (err) => {
      if (err instanceof ApiError && err.issues.length) setErrors(errorsFromIssues(draft.type, err.issues));
      else if (err instanceof ApiError && err.status === 409 && err.currentVersion !== null)
        setErrors({ form: 'Someone changed this channel meanwhile: reload it, then apply your change again.' });
      else setErrors({ form: (err as Error).message });
    },
  });

  const update = (next: ChannelDraft) => {
    setDraft(next);
    if (touched) setErrors(validateChannel(next, base));
  };
  const set = <K extends keyof ChannelDraft>(k: K, v: ChannelDraft[K]) => update({ ...draft, [k]: v });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    const found = validateChannel(draft, base);
    setErrors(found);
    if (Object.keys(found).length === 0) save.mutate(draftToInput(draft));
  };
  const text = (k: Exclude<ChannelField, `secret.${string}`>, label: string, extra: Record<string, unknown> = {}) => (
    <TextField
      label={label}
      name={k}
      value={draft[k] as string}
      error={errors[k]}
      onChange={(e) => set(k, e.target.value as never)}
      {...extra}
    />
  );
  const t = draft.type;

  return (
    <>
      <PageHeader title={id ? `Edit ${stored.data?.name ?? 'channel'}` : 'New channel'} />
      <AlertsNav />
      <ErrorNote error={stored.error} />
      <Card>
        <form className="fw-stack fw-alert-form" onSubmit={submit} noValidate aria-label="Channel">
          <WriteGate>
            <div className="fw-grid">
              {text('name', 'Name', { required: true })}
              <SelectField
                label="Type"
                name="type"
                value={t}
                disabled={id !== undefined}
                hint={id ? 'A channel keeps its type.' : undefined}
                onChange={(e) => set('type', e.target.value as ChannelType)}
                options={CHANNEL_TYPES.map((v) => ({ value: v, label: v }))}
              />
            </div>
            {t === 'webhook' && (
              <>
                {text('url', 'URL', { type: 'url' })}
                <TextAreaField
                  label="Headers"
                  name="headers"
                  hint="one Name: value per line (no credentials: use the bearer token, stored encrypted)"
                  value={draft.headers}
                  error={errors.headers}
                  onChange={(e) => set('headers', e.target.value)}
                />
              </>
            )}
            {t === 'slack' && (
              <div className="fw-grid">
                {text('channel', 'Channel', { hint: 'overrides the webhook’s default, e.g. #ops' })}
                {text('username', 'Username')}
              </div>
            )}
            {t === 'email' && (
              <>
                <div className="fw-grid">
                  {text('host', 'SMTP host')}
                  {text('port', 'SMTP port', { inputMode: 'numeric' })}
                  {text('username', 'SMTP username')}
                </div>
                <Checkbox
                  label="TLS from the start (port 465); otherwise STARTTLS when offered"
                  checked={draft.secure}
                  onChange={(e) => set('secure', e.target.checked)}
                />
                {!draft.secure && (
                  <Checkbox
                    label="Allow the login without TLS (only a trusted relay that offers no STARTTLS)"
                    checked={draft.allowPlaintextLogin}
                    onChange={(e) => set('allowPlaintextLogin', e.target.checked)}
                  />
                )}
                <Checkbox
                  label="Verify the server's TLS certificate (off only for a relay of your own with a self-signed one)"
                  checked={draft.tlsVerify}
                  onChange={(e) => set('tlsVerify', e.target.checked)}
                />
                <div className="fw-grid">
                  {text('from', 'From', { type: 'email' })}
                  {text('to', 'To', { hint: 'comma-separated addresses' })}
                </div>
              </>
            )}
            {t === 'pagerduty' && text('eventsUrl', 'Events API URL', { type: 'url' })}
            <fieldset className="fw-fieldset fw-stack">
              <legend>Secrets (write-only: never shown again; leave empty to keep the stored value)</legend>
              <div className="fw-grid">
                {secretFieldsOf(t).map(([field, required]) => {
                  const s = storedSecret(base?.type === t ? base : undefined, field);
                  const state = s.set ? `set${s.hint ? ` (${s.hint})` : ''}` : 'not set';
                  return (
                    <div key={field} className="fw-stack">
                      <TextField
                        label={SECRET_LABELS[field] ?? field}
                        name={`secret-${field}`}
                        type="password"
                        autoComplete="new-password"
                        data-secret={field}
                        hint={`Stored: ${state}${required ? ' · required' : ''}`}
                        value={draft.secrets[field] ?? ''}
                        error={errors[`secret.${field}`]}
                        onChange={(e) => set('secrets', { ...draft.secrets, [field]: e.target.value })}
                      />
                      {s.set && !required && (
                        <Checkbox
                          label={`Remove the stored ${field}`}
                          checked={draft.clear[field] === true}
                          onChange={(e) => set('clear', { ...draft.clear, [field]: e.target.checked })}
                        />
                      )}
                    </div>
                  );
                })}
              </div>
            </fieldset>
            <div className="fw-row">
              <Checkbox label="Enabled" checked={draft.enabled} onChange={(e) => set('enabled', e.target.checked)} />
              <Checkbox
                label="Also notify when resolved"
                checked={draft.sendResolved}
                onChange={(e) => set('sendResolved', e.target.checked)}
              />
            </div>
            {errors.form && (
              <p className="fw-alert" role="alert">
                {errors.form}
              </p>
            )}
            <div className="fw-row">
              <Button type="submit" variant="primary" disabled={save.isPending || (id !== undefined && !base)}>
                {save.isPending ? 'Saving…' : id ? 'Save' : 'Create channel'}
              </Button>
              <Button onClick={() => navigate('/alerts/channels')}>Cancel</Button>
            </div>
          </WriteGate>
        </form>
      </Card>
    </>
  );
}
