import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useNavigate, useParams } from 'react-router';
import type { StatusPageDefinition } from '@fleetwatch/contracts';
import { Button, Card, Checkbox, ErrorNote, PageHeader, SelectField, TextAreaField, TextField } from '@fleetwatch/ui';
import { api, ApiError, enc } from '../../api/client';
import { StatusPageView } from '../public-status/status-page-view';
import '../public-status/public-status.css';
import { statusPageKeys } from './status-pages-page';
import {
  draftFromPage,
  draftToBody,
  errorsFromIssues,
  NEW_COMPONENT,
  NEW_DRAFT,
  previewOf,
  slugOf,
  toLocalInput,
  type AnnouncementDraft,
  type ComponentDraft,
  type FieldErrors,
  type StatusPageDraft,
} from './status-page-form';
import { useStoredDraft } from '../../stored-draft';
import { WriteGate } from '../../read-only';

const SEVERITIES = ['info', 'maintenance', 'minor', 'major'] as const;

/** Create (`/status-pages/new`) or edit (`/status-pages/:id`) a status page, with a preview beside the form. */
export function StatusPageEditPage() {
  const id = useParams()['id'];
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const stored = useQuery({
    queryKey: statusPageKeys.one(id ?? ''),
    queryFn: ({ signal }) => api<StatusPageDefinition>(`/api/v1/status-pages/${enc(id ?? '')}`, { signal }),
    enabled: id !== undefined,
  });
  const [draft, setDraft, base] = useStoredDraft(stored.data, draftFromPage, NEW_DRAFT);
  const [errors, setErrors] = useState<FieldErrors>({});

  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      id
        ? api<StatusPageDefinition>(`/api/v1/status-pages/${enc(id)}`, {
            method: 'PUT',
            body,
            headers: base ? { 'if-match': `"${base.version}"` } : {},
          })
        : api<StatusPageDefinition>('/api/v1/status-pages', { method: 'POST', body }),
    onSuccess: async (saved) => {
      await queryClient.invalidateQueries({ queryKey: statusPageKeys.list() });
      queryClient.setQueryData(statusPageKeys.one(saved.id), saved);
      navigate('/status-pages');
    },
    onError: (err) => {
      if (err instanceof ApiError && err.issues.length) setErrors(errorsFromIssues(err.issues));
      else if (err instanceof ApiError && err.status === 409 && err.currentVersion !== null)
        setErrors({ form: 'Someone changed this page meanwhile: reload it, then apply your change again.' });
      else setErrors({ form: (err as Error).message });
    },
  });

  // A field's message goes once it is edited (the next save asks the API again).
  const clear = (key: string) =>
    setErrors((e) => {
      if (!(key in e)) return e;
      const next = { ...e };
      delete next[key];
      return next;
    });
  const set = <K extends keyof StatusPageDraft>(k: K, v: StatusPageDraft[K]) => {
    clear(k);
    setDraft((d) => ({ ...d, [k]: v }));
  };
  const setComponent = (i: number, patch: Partial<ComponentDraft>) => {
    for (const k of Object.keys(patch)) clear(`components.${i}.${k}`);
    set(
      'components',
      draft.components.map((c, j) => (j === i ? { ...c, ...patch } : c)),
    );
  };
  const setAnnouncement = (i: number, patch: Partial<AnnouncementDraft>) => {
    for (const k of Object.keys(patch)) clear(`announcements.${i}.${k}`);
    set(
      'announcements',
      draft.announcements.map((a, j) => (j === i ? { ...a, ...patch } : a)),
    );
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    save.mutate(draftToBody({ ...draft, slug: draft.slug || slugOf(draft.title) }));
  };

  return (
    <>
      <PageHeader title={id ? `Edit ${stored.data?.title ?? 'status page'}` : 'New status page'} />
      <ErrorNote error={stored.error} />
      <div className="sp-editor">
        <Card title="Page">
          <form className="fw-stack" onSubmit={submit} noValidate aria-label="Status page">
            <WriteGate>
              <TextField
                label="Title"
                name="title"
                required
                value={draft.title}
                error={errors['title']}
                onChange={(e) => set('title', e.target.value)}
              />
              <TextField
                label="Slug"
                name="slug"
                required
                // Left empty, the title's: shown as the placeholder, not written in (filled as the title lost focus, it was
                // in the field as the person clicked into it to type their own, which then joined it).
                hint={`Public address: /status/${draft.slug || slugOf(draft.title) || '…'} (lowercase letters, digits, dashes)`}
                placeholder={slugOf(draft.title)}
                value={draft.slug}
                error={errors['slug']}
                onChange={(e) => set('slug', e.target.value)}
              />
              <TextAreaField
                label="Description"
                name="description"
                value={draft.description}
                error={errors['description']}
                onChange={(e) => set('description', e.target.value)}
              />
              <Checkbox
                label="Published (visible to anyone at its public address)"
                checked={draft.published}
                onChange={(e) => set('published', e.target.checked)}
              />
              <fieldset className="fw-stack">
                <legend>Components</legend>
                {errors['components'] && <p className="fw-field__error">{errors['components']}</p>}
                {draft.components.map((c, i) => (
                  <div key={i} className="fw-stack sp-editor-item" aria-label={`Component ${i + 1}`} role="group">
                    <TextField
                      label={`Component ${i + 1} name`}
                      hint="What visitors see"
                      value={c.name}
                      error={errors[`components.${i}.name`]}
                      onChange={(e) => setComponent(i, { name: e.target.value })}
                    />
                    <TextField
                      label={`Component ${i + 1} description`}
                      value={c.description}
                      error={errors[`components.${i}.description`]}
                      onChange={(e) => setComponent(i, { description: e.target.value })}
                    />
                    <div className="fw-grid">
                      <TextField
                        label={`Component ${i + 1} tags`}
                        hint="comma-separated; targets with all of them"
                        value={c.tags}
                        error={errors[`components.${i}.tags`]}
                        onChange={(e) => setComponent(i, { tags: e.target.value })}
                      />
                      <TextField
                        label={`Component ${i + 1} target ids`}
                        hint="comma-separated, optional (check:…, host:…, instance:…)"
                        value={c.targetIds}
                        error={errors[`components.${i}.targetIds`]}
                        onChange={(e) => setComponent(i, { targetIds: e.target.value })}
                      />
                    </div>
                    {draft.components.length > 1 && (
                      <Button
                        size="small"
                        onClick={() =>
                          set(
                            'components',
                            draft.components.filter((_, j) => j !== i),
                          )
                        }
                      >
                        Remove component {i + 1}
                      </Button>
                    )}
                  </div>
                ))}
                <Button size="small" onClick={() => set('components', [...draft.components, NEW_COMPONENT])}>
                  Add component
                </Button>
              </fieldset>
              <fieldset className="fw-stack">
                <legend>Announcements and incident notes</legend>
                {draft.announcements.map((a, i) => (
                  <div key={i} className="fw-stack sp-editor-item" role="group" aria-label={`Announcement ${i + 1}`}>
                    <TextField
                      label={`Announcement ${i + 1} title`}
                      value={a.title}
                      error={errors[`announcements.${i}.title`]}
                      onChange={(e) => setAnnouncement(i, { title: e.target.value })}
                    />
                    <TextAreaField
                      label={`Announcement ${i + 1} text`}
                      value={a.body}
                      error={errors[`announcements.${i}.body`]}
                      onChange={(e) => setAnnouncement(i, { body: e.target.value })}
                    />
                    <div className="fw-grid">
                      <SelectField
                        label={`Announcement ${i + 1} severity`}
                        value={a.severity}
                        onChange={(e) =>
                          setAnnouncement(i, { severity: e.target.value as AnnouncementDraft['severity'] })
                        }
                        options={SEVERITIES.map((s) => ({ value: s, label: s }))}
                      />
                      <TextField
                        label={`Announcement ${i + 1} starts`}
                        type="datetime-local"
                        value={a.startsAt}
                        error={errors[`announcements.${i}.startsAt`]}
                        onChange={(e) => setAnnouncement(i, { startsAt: e.target.value })}
                      />
                      <TextField
                        label={`Announcement ${i + 1} ends`}
                        type="datetime-local"
                        hint="empty: ongoing"
                        value={a.endsAt}
                        error={errors[`announcements.${i}.endsAt`]}
                        onChange={(e) => setAnnouncement(i, { endsAt: e.target.value })}
                      />
                    </div>
                    <Button
                      size="small"
                      onClick={() =>
                        set(
                          'announcements',
                          draft.announcements.filter((_, j) => j !== i),
                        )
                      }
                    >
                      Remove announcement {i + 1}
                    </Button>
                  </div>
                ))}
                <Button
                  size="small"
                  onClick={() =>
                    set('announcements', [
                      ...draft.announcements,
                      {
                        title: '',
                        body: '',
                        severity: 'info',
                        startsAt: toLocalInput(new Date().toISOString()),
                        endsAt: '',
                      },
                    ])
                  }
                >
                  Add announcement
                </Button>
              </fieldset>
              {errors['form'] && (
                <p className="fw-alert" role="alert">
                  {errors['form']}
                </p>
              )}
              <div className="fw-row">
                <Button type="submit" variant="primary" disabled={save.isPending || (id !== undefined && !base)}>
                  {save.isPending ? 'Saving…' : id ? 'Save' : 'Create status page'}
                </Button>
                <Button onClick={() => navigate('/status-pages')}>Cancel</Button>
              </div>
            </WriteGate>
          </form>
        </Card>
        <Card title="Preview" aria-label="Preview">
          <p className="fw-muted">
            The page as visitors will see it; the bars fill in from the components’ status history once it is saved.
          </p>
          <div className="sp-preview">
            <StatusPageView page={previewOf(draft)} />
          </div>
        </Card>
      </div>
    </>
  );
}
