import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useNavigate, useParams } from 'react-router';
import type { MaintenanceWindowDefinition } from '@fleetwatch/contracts';
import { Button, Card, ErrorNote, PageHeader, SelectField, TextAreaField, TextField } from '@fleetwatch/ui';
import { api, ApiError, enc } from '../../../api/client';
import { alertKeys, fetchWindow, ifMatch } from '../../../api/alert-queries';
import { useSession } from '../../../session';
import { AlertsNav } from '../alerts-nav';
import {
  draftFromWindow,
  draftToInput,
  errorsFromIssues,
  newWindow,
  validateWindow,
  type WindowDraft,
  type WindowErrors,
} from './window-form-model';
import { useStoredDraft } from '../../../stored-draft';
import { WriteGate } from '../../../read-only';

/** Create (`/alerts/maintenance/new`) or edit (`/alerts/maintenance/:id`) a maintenance window. */
export function WindowEditPage() {
  const id = useParams()['id'];
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const author = useSession().user?.name ?? '';
  const stored = useQuery({
    queryKey: alertKeys.window(id ?? ''),
    queryFn: ({ signal }) => fetchWindow(id ?? '', signal),
    enabled: id !== undefined,
  });
  const [draft, setDraft, base] = useStoredDraft(stored.data, draftFromWindow, newWindow);
  const [errors, setErrors] = useState<WindowErrors>({});
  const [touched, setTouched] = useState(false);

  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      id
        ? api<MaintenanceWindowDefinition>(`/api/v1/maintenance-windows/${enc(id)}`, {
            method: 'PUT',
            body,
            headers: ifMatch(base?.version),
          })
        : api<MaintenanceWindowDefinition>('/api/v1/maintenance-windows', { method: 'POST', body }),
    onSuccess: async (saved) => {
      await queryClient.invalidateQueries({ queryKey: alertKeys.windows() });
      queryClient.setQueryData(alertKeys.window(saved.id), saved);
      navigate('/alerts/maintenance');
    },
    onError: (err) => {
      if (err instanceof ApiError && err.issues.length) setErrors(errorsFromIssues(err.issues));
      else if (err instanceof ApiError && err.status === 409 && err.currentVersion !== null)
        setErrors({ form: 'Someone changed this window meanwhile: reload it, then apply your change again.' });
      else setErrors({ form: (err as Error).message });
    },
  });

  const set = <K extends keyof WindowDraft>(k: K, v: WindowDraft[K]) => {
    const next = { ...draft, [k]: v };
    setDraft(next);
    if (touched) setErrors(validateWindow(next, author));
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    const found = validateWindow(draft, author);
    setErrors(found);
    if (Object.keys(found).length === 0) save.mutate(draftToInput(draft));
  };
  const text = (k: Exclude<keyof WindowDraft, 'stored'>, label: string, extra: Record<string, unknown> = {}) => (
    <TextField
      label={label}
      name={k}
      value={draft[k]}
      error={errors[k]}
      onChange={(e) => set(k, e.target.value as never)}
      {...extra}
    />
  );

  return (
    <>
      <PageHeader title={id ? `Edit ${stored.data?.name ?? 'window'}` : 'New maintenance window'} />
      <AlertsNav />
      <ErrorNote error={stored.error} />
      <Card>
        <form className="fw-stack fw-alert-form" onSubmit={submit} noValidate aria-label="Maintenance window">
          <WriteGate>
            {text('name', 'Name', { required: true })}
            <fieldset className="fw-fieldset fw-stack">
              <legend>Covers (a target listed, carrying one of the tags, or in one of the sites)</legend>
              <div className="fw-grid">
                {text('targetIds', 'Target ids', { hint: 'comma-separated' })}
                {text('tags', 'Tags', { hint: 'comma-separated' })}
                {text('sites', 'Sites', { hint: 'comma-separated' })}
              </div>
              {errors.scope && (
                <span className="fw-field__error" role="alert">
                  {errors.scope}
                </span>
              )}
            </fieldset>
            <fieldset className="fw-fieldset fw-stack">
              <legend>When</legend>
              <SelectField
                label="Schedule"
                name="scheduleType"
                value={draft.scheduleType}
                error={errors.scheduleType}
                onChange={(e) => set('scheduleType', e.target.value as WindowDraft['scheduleType'])}
                options={[
                  { value: 'once', label: 'once' },
                  { value: 'recurring', label: 'recurring (cron)' },
                ]}
              />
              {draft.scheduleType === 'once' ? (
                <div className="fw-grid">
                  {text('startsAt', 'Starts', { type: 'datetime-local', hint: 'your time zone' })}
                  {text('endsAt', 'Ends', { type: 'datetime-local', hint: 'your time zone' })}
                </div>
              ) : (
                <>
                  <div className="fw-grid">
                    {text('cron', 'Cron', {
                      hint: 'minute hour day-of-month month day-of-week: 0 2 * * 0 = Sundays 02:00',
                    })}
                    {text('duration', 'Duration', { hint: 'each window, e.g. 2h, 90m' })}
                    {text('timezone', 'Time zone', { hint: 'IANA, e.g. Europe/Berlin or UTC' })}
                  </div>
                  <div className="fw-grid">
                    {text('from', 'From (optional)', { type: 'datetime-local' })}
                    {text('until', 'Until (optional)', { type: 'datetime-local' })}
                  </div>
                </>
              )}
            </fieldset>
            <TextAreaField
              label="Comment"
              name="comment"
              value={draft.comment}
              error={errors.comment}
              onChange={(e) => set('comment', e.target.value)}
            />
            {errors.form && (
              <p className="fw-alert" role="alert">
                {errors.form}
              </p>
            )}
            <div className="fw-row">
              <Button type="submit" variant="primary" disabled={save.isPending || (id !== undefined && !base)}>
                {save.isPending ? 'Saving…' : id ? 'Save' : 'Create window'}
              </Button>
              <Button onClick={() => navigate('/alerts/maintenance')}>Cancel</Button>
            </div>
          </WriteGate>
        </form>
      </Card>
    </>
  );
}
