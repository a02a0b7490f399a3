import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useNavigate, useParams } from 'react-router';
import {
  ALERTABLE_STATUSES,
  InstanceKind,
  SEVERITIES,
  TargetKind,
  type AlertRuleDefinition,
} from '@fleetwatch/contracts';
import {
  Button,
  Card,
  Checkbox,
  CheckboxGroup,
  ErrorNote,
  PageHeader,
  SelectField,
  TextAreaField,
  TextField,
  ticked,
} from '@fleetwatch/ui';
import { api, ApiError, enc } from '../../../api/client';
import { alertKeys, fetchChannels, fetchRule, ifMatch } from '../../../api/alert-queries';
import { AlertsNav } from '../alerts-nav';
import {
  draftFromRule,
  draftToInput,
  errorsFromIssues,
  METRIC_FILTER,
  METRIC_KINDS,
  NEW_RULE,
  validateRule,
  type RuleDraft,
  type RuleErrors,
  type RuleField,
} from './rule-form-model';
import { useStoredDraft } from '../../../stored-draft';
import { WriteGate } from '../../../read-only';

/** Target kinds, then pushed instances' own kinds (a target matches when its kind or its instance kind is ticked). */
const KINDS: readonly string[] = [...Object.values(TargetKind), ...Object.values(InstanceKind)];
const STATUSES: readonly string[] = ALERTABLE_STATUSES;

const toggle = (list: readonly string[], value: string, on: boolean) =>
  on ? [...list.filter((v) => v !== value), value] : list.filter((v) => v !== value);

/** Create (`/alerts/rules/new`) or edit (`/alerts/rules/:id`) an alert rule. */
export function RuleEditPage() {
  const id = useParams()['id'];
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const stored = useQuery({
    queryKey: alertKeys.rule(id ?? ''),
    queryFn: ({ signal }) => fetchRule(id ?? '', signal),
    enabled: id !== undefined,
  });
  const channels = useQuery({ queryKey: alertKeys.channels(), queryFn: ({ signal }) => fetchChannels(signal) });
  const [draft, setDraft, base] = useStoredDraft(stored.data, draftFromRule, NEW_RULE);
  const [errors, setErrors] = useState<RuleErrors>({});
  const [touched, setTouched] = useState(false);

  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      id
        ? api<AlertRuleDefinition>(`/api/v1/alert-rules/${enc(id)}`, {
            method: 'PUT',
            body,
            headers: ifMatch(base?.version),
          })
        : api<AlertRuleDefinition>('/api/v1/alert-rules', { method: 'POST', body }),
    onSuccess: async (saved) => {
      await queryClient.invalidateQueries({ queryKey: alertKeys.rules() });
      queryClient.setQueryData(alertKeys.rule(saved.id), saved);
      navigate('/alerts/rules');
    },
    onError: (err) => {
      if (err instanceof ApiError && err.issues.length) setErrors(errorsFromIssues(err.issues));
      else if (err instanceof ApiError && err.status === 409 && err.currentVersion !== null)
        setErrors({ form: 'Someone changed this rule meanwhile: reload it, then apply your change again.' });
      else setErrors({ form: (err as Error).message });
    },
  });

  // Re-validated on each change the person makes once they have submitted (not when a refetch replaces an untouched
  // draft: the server's answer to the last save stays shown).
  const set = <K extends keyof RuleDraft>(k: K, v: RuleDraft[K]) => {
    const next = { ...draft, [k]: v };
    setDraft(next);
    if (touched) setErrors(validateRule(next));
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    const found = validateRule(draft);
    setErrors(found);
    if (Object.keys(found).length === 0) save.mutate(draftToInput(draft));
  };
  const text = (k: RuleField, label: string, extra: Record<string, unknown> = {}) => (
    <TextField
      label={label}
      name={k}
      value={draft[k] as string}
      error={errors[k]}
      onChange={(e) => set(k, e.target.value as never)}
      {...extra}
    />
  );
  const filter = METRIC_FILTER[draft.metric];

  return (
    <>
      <PageHeader title={id ? `Edit ${stored.data?.name ?? 'rule'}` : 'New alert rule'} />
      <AlertsNav />
      <ErrorNote error={stored.error ?? channels.error} />
      <Card>
        <form className="fw-stack fw-alert-form" onSubmit={submit} noValidate aria-label="Alert rule">
          <WriteGate>
            <div className="fw-grid">
              {text('name', 'Name', { required: true })}
              <SelectField
                label="Severity"
                name="severity"
                value={draft.severity}
                error={errors.severity}
                onChange={(e) => set('severity', e.target.value)}
                options={SEVERITIES.map((s) => ({ value: s, label: s }))}
              />
              {text('for', 'For', { hint: 'how long the condition must hold before it fires: 30s, 5m, 1h' })}
            </div>
            {text('description', 'Description')}
            <fieldset className="fw-fieldset fw-stack">
              <legend>Targets (all given fields must match; empty: every target)</legend>
              <div className="fw-grid">
                {text('tags', 'Tags', { hint: 'comma-separated; a target needs all of them' })}
                {text('sites', 'Sites', { hint: 'comma-separated' })}
                {text('locations', 'Locations', { hint: 'comma-separated' })}
                {text('targetIds', 'Target ids', { hint: 'comma-separated, e.g. check:…, instance:web-1' })}
              </div>
              <CheckboxGroup
                label="Kinds"
                options={KINDS}
                selected={draft.kinds}
                onToggle={(k, on) => set('kinds', ticked(KINDS, draft.kinds, k, on))}
                error={errors.kinds}
              />
            </fieldset>
            <fieldset className="fw-fieldset fw-stack">
              <legend>Condition</legend>
              <SelectField
                label="Condition type"
                name="conditionType"
                value={draft.conditionType}
                error={errors.conditionType}
                onChange={(e) => set('conditionType', e.target.value as RuleDraft['conditionType'])}
                options={[
                  { value: 'status', label: 'target status' },
                  { value: 'metric', label: 'metric above / below a threshold' },
                ]}
              />
              {draft.conditionType === 'status' ? (
                <CheckboxGroup
                  label="Statuses"
                  options={STATUSES}
                  selected={draft.statuses}
                  onToggle={(st, on) => set('statuses', ticked(STATUSES, draft.statuses, st, on))}
                  error={errors.statuses}
                />
              ) : (
                <div className="fw-grid">
                  <SelectField
                    label="Metric"
                    name="metric"
                    value={draft.metric}
                    error={errors.metric}
                    onChange={(e) => set('metric', e.target.value as RuleDraft['metric'])}
                    options={METRIC_KINDS.map((k) => ({ value: k, label: k }))}
                  />
                  {filter && text('metricFilter', filter.label)}
                  <SelectField
                    label="Operator"
                    name="op"
                    value={draft.op}
                    error={errors.op}
                    onChange={(e) => set('op', e.target.value as RuleDraft['op'])}
                    options={[
                      { value: 'above', label: 'above' },
                      { value: 'below', label: 'below' },
                    ]}
                  />
                  {text('threshold', 'Threshold', { inputMode: 'decimal', hint: '% 0–100, ms, °C' })}
                </div>
              )}
            </fieldset>
            <div className="fw-grid">
              <TextAreaField
                label="Labels"
                name="labels"
                hint="one name=value per line (alertname, severity, target and rule_id are set by the engine)"
                value={draft.labels}
                error={errors.labels}
                onChange={(e) => set('labels', e.target.value)}
              />
              <TextAreaField
                label="Annotations"
                name="annotations"
                hint="one name=template per line, e.g. summary={{ target.name }} is {{ alert.state }}"
                value={draft.annotations}
                error={errors.annotations}
                onChange={(e) => set('annotations', e.target.value)}
              />
            </div>
            <div className="fw-row" role="group" aria-label="Channels">
              <span className="fw-muted">Notify:</span>
              {(channels.data ?? []).map((c) => (
                <Checkbox
                  key={c.id}
                  label={`${c.name} (${c.type})`}
                  checked={draft.channels.includes(c.id)}
                  onChange={(e) => set('channels', toggle(draft.channels, c.id, e.target.checked))}
                />
              ))}
              {channels.data?.length === 0 && <span className="fw-muted">no channels yet (shown, never sent)</span>}
              {errors.channels && (
                <span className="fw-field__error" role="alert">
                  {errors.channels}
                </span>
              )}
            </div>
            <Checkbox label="Enabled" checked={draft.enabled} onChange={(e) => set('enabled', e.target.checked)} />
            {errors.form && (
              <p className="fw-alert" role="alert">
                {errors.form}
              </p>
            )}
            <div className="fw-row">
              <Button type="submit" variant="primary" disabled={save.isPending || (id !== undefined && !base)}>
                {save.isPending ? 'Saving…' : id ? 'Save' : 'Create rule'}
              </Button>
              <Button onClick={() => navigate('/alerts/rules')}>Cancel</Button>
            </div>
          </WriteGate>
        </form>
      </Card>
    </>
  );
}
