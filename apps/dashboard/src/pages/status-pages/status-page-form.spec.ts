import { describe, expect, it } from 'vitest';
import type { StatusPageDefinition } from '@fleetwatch/contracts';
import { draftFromPage, draftToBody, errorsFromIssues, NEW_DRAFT, previewOf, slugOf } from './status-page-form';

const stored: StatusPageDefinition = {
  id: '0190f0e0-0000-7000-8000-000000000000',
  version: 3,
  createdAt: '2026-12-01T00:00:00.000Z',
  updatedAt: '2026-12-01T00:00:00.000Z',
  slug: 'acme',
  title: 'Acme',
  description: 'd',
  published: true,
  components: [{ name: 'Web', description: '', tags: ['web', 'prod'], targetIds: ['check:1'] }],
  announcements: [{ title: 'Upgrade', body: 'b', severity: 'maintenance', startsAt: '2026-12-01T10:00:00.000Z' }],
};

describe('status page form', () => {
  it('a stored page → draft → body is the page again', () => {
    const body = draftToBody(draftFromPage(stored));
    expect(body).toEqual({
      slug: 'acme',
      title: 'Acme',
      description: 'd',
      published: true,
      components: [{ name: 'Web', description: '', tags: ['web', 'prod'], targetIds: ['check:1'] }],
      announcements: [{ title: 'Upgrade', body: 'b', severity: 'maintenance', startsAt: '2026-12-01T10:00:00.000Z' }],
    });
  });

  it('an announcement time with seconds survives a save that leaves its field alone; an edited one is the typed minute', () => {
    const withSeconds: StatusPageDefinition = {
      ...stored,
      announcements: [
        {
          title: 'Upgrade',
          body: 'b',
          severity: 'maintenance',
          startsAt: '2026-12-06T10:29:28.123Z',
          endsAt: '2026-12-06T11:29:28.000Z',
        },
      ],
    };
    const draft = draftFromPage(withSeconds);
    expect(draftToBody(draft).announcements).toEqual(withSeconds.announcements);
    const edited = { ...draft.announcements[0], startsAt: '2026-12-06T09:00' };
    const body = draftToBody({ ...draft, announcements: [edited] });
    const sent = (body.announcements as Array<{ startsAt: string; endsAt: string }>)[0];
    expect(sent.startsAt).toBe(new Date('2026-12-06T09:00').toISOString());
    expect(sent.endsAt).toBe('2026-12-06T11:29:28.000Z');
  });

  it.each([
    ['tags split on commas, blanks dropped', ' web ,, prod ', ['web', 'prod']],
    ['empty text is no tags', '', []],
  ])('%s', (_, tags, expected) => {
    const body = draftToBody({ ...NEW_DRAFT, components: [{ name: 'x', description: '', tags, targetIds: '' }] });
    expect((body.components as Array<{ tags: string[] }>)[0].tags).toEqual(expected);
  });

  it.each([
    ['Acme Status', 'acme-status'],
    ['  Ünïcode & more!! ', 'unicode-more'],
    ['---', ''],
  ])('slugOf(%j) = %j', (title, slug) => expect(slugOf(title)).toBe(slug));

  it('issues map to fields; a body-level issue to the form', () => {
    expect(
      errorsFromIssues([
        { path: 'slug', message: 'taken' },
        { path: 'slug', message: 'second' },
        { path: 'components.0.tags', message: 'select targets' },
        { path: '(body)', message: 'bad' },
      ]),
    ).toEqual({ slug: 'taken', 'components.0.tags': 'select targets', form: 'bad' });
  });

  it('an issue about one item of a list, or about no field shown, still reaches a field the editor shows', () => {
    expect(
      errorsFromIssues([
        { path: 'components.1.tags.2', message: 'use letters, digits …' },
        { path: 'components.0.targetIds.0', message: 'too long' },
        { path: 'announcements', message: 'at most 20' },
      ]),
    ).toEqual({
      'components.1.tags': 'tag 3: use letters, digits …',
      'components.0.targetIds': 'target id 1: too long',
      form: 'announcements: at most 20',
    });
  });

  it('the preview has 90 days without data and the draft texts as they are', () => {
    const p = previewOf({ ...NEW_DRAFT, title: '<b>x</b>' }, 90, Date.UTC(2026, 11, 2, 12));
    expect(p.title).toBe('<b>x</b>');
    expect(p.components[0].days).toHaveLength(90);
    expect(p.components[0].days[89]).toEqual({ date: '2026-12-02', uptime: null, state: 'unknown' });
    expect(p.components[0].days.every((d) => d.uptime === null)).toBe(true);
  });
});
