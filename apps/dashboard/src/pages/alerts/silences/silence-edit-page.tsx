import { useMemo, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useNavigate, useSearchParams } from 'react-router';
import type { MatcherOp, SilenceDefinition } from '@fleetwatch/contracts';
import { Button, Card, PageHeader, SelectField, TextAreaField, TextField } from '@fleetwatch/ui';
import { api, ApiError } from '../../../api/client';
import { alertKeys } from '../../../api/alert-queries';
import { useSession } from '../../../session';
import { AlertsNav } from '../alerts-nav';
import { WriteGate } from '../../../read-only';
import {
  draftToInput,
  errorsFromIssues,
  newSilence,
  OPS,
  parseMatcher,
  validateSilence,
  type MatcherDraft,
  type SilenceDraft,
  type SilenceErrors,
} from './silence-form-model';

/** `/alerts/silences/new` (optionally `?matcher=name=value&…`, as an alert's "Silence" link sends). */
export function SilenceEditPage() {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const queryClient = useQueryClient();
  const { user } = useSession();
  const author = user?.name ?? '';
  const initial = useMemo(
    () =>
      newSilence(
        Date.now(),
        params
          .getAll('matcher')
          .map(parseMatcher)
          .filter((m): m is MatcherDraft => m !== null),
      ),
    [params],
  );
  const [draft, setDraft] = useState<SilenceDraft>(initial);
  const [errors, setErrors] = useState<SilenceErrors>({});
  const [touched, setTouched] = useState(false);

  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) => api<SilenceDefinition>('/api/v1/silences', { method: 'POST', body }),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: alertKeys.all() });
      navigate('/alerts/silences');
    },
    onError: (err) => {
      if (err instanceof ApiError && err.issues.length) setErrors(errorsFromIssues(err.issues));
      else setErrors({ form: (err as Error).message });
    },
  });

  const update = (next: SilenceDraft) => {
    setDraft(next);
    if (touched) setErrors(validateSilence(next, author));
  };
  const setMatcher = (i: number, change: Partial<MatcherDraft>) =>
    update({ ...draft, matchers: draft.matchers.map((m, j) => (j === i ? { ...m, ...change } : m)) });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    const found = validateSilence(draft, author);
    setErrors(found);
    if (Object.keys(found).length === 0) save.mutate(draftToInput(draft));
  };

  return (
    <>
      <PageHeader title="New silence" />
      <AlertsNav />
      <Card>
        <form className="fw-stack fw-alert-form" onSubmit={submit} noValidate aria-label="Silence">
          <WriteGate>
            <fieldset className="fw-fieldset fw-stack">
              <legend>Matchers (all must match an alert’s labels; =~ and !~ take an anchored regex)</legend>
              {draft.matchers.map((m, i) => (
                <div key={i} className="fw-matcher-row" data-matcher={i}>
                  <TextField
                    label={`Label ${i + 1}`}
                    value={m.name}
                    onChange={(e) => setMatcher(i, { name: e.target.value })}
                  />
                  <SelectField
                    label={`Operator ${i + 1}`}
                    value={m.op}
                    onChange={(e) => setMatcher(i, { op: e.target.value as MatcherOp })}
                    options={OPS.map((o) => ({ value: o, label: o }))}
                  />
                  <TextField
                    label={`Value ${i + 1}`}
                    value={m.value}
                    error={errors[`matcher.${i}`]}
                    onChange={(e) => setMatcher(i, { value: e.target.value })}
                  />
                  <Button
                    size="small"
                    aria-label={`Remove matcher ${i + 1}`}
                    disabled={draft.matchers.length === 1}
                    onClick={() => update({ ...draft, matchers: draft.matchers.filter((_, j) => j !== i) })}
                  >
                    Remove
                  </Button>
                </div>
              ))}
              {errors.matchers && (
                <span className="fw-field__error" role="alert">
                  {errors.matchers}
                </span>
              )}
              <div>
                <Button
                  size="small"
                  onClick={() => update({ ...draft, matchers: [...draft.matchers, { name: '', op: '=', value: '' }] })}
                >
                  Add matcher
                </Button>
              </div>
            </fieldset>
            <div className="fw-grid">
              <TextField
                label="Starts"
                type="datetime-local"
                value={draft.startsAt}
                error={errors.startsAt}
                hint="your time zone"
                onChange={(e) => update({ ...draft, startsAt: e.target.value })}
              />
              <TextField
                label="Ends"
                type="datetime-local"
                value={draft.endsAt}
                error={errors.endsAt}
                hint="your time zone"
                onChange={(e) => update({ ...draft, endsAt: e.target.value })}
              />
              <TextField label="Author" value={author} readOnly hint="you: the gateway records the caller" />
            </div>
            <TextAreaField
              label="Comment"
              value={draft.comment}
              error={errors.comment}
              hint="why (required)"
              onChange={(e) => update({ ...draft, comment: e.target.value })}
            />
            {errors.form && (
              <p className="fw-alert" role="alert">
                {errors.form}
              </p>
            )}
            <div className="fw-row">
              <Button type="submit" variant="primary" disabled={save.isPending}>
                {save.isPending ? 'Saving…' : 'Create silence'}
              </Button>
              <Button onClick={() => navigate('/alerts/silences')}>Cancel</Button>
            </div>
          </WriteGate>
        </form>
      </Card>
    </>
  );
}
