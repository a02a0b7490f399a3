import { describe, expect, it } from 'vitest';
import type { CheckDefinition } from '@fleetwatch/contracts';
import { draftFromCheck, draftToInput, errorsFromIssues, NEW_DRAFT, validateDraft } from './check-form-model';

const http = { ...NEW_DRAFT, name: 'web', url: 'https://example.com/health' };

describe('check form ↔ contract', () => {
  it('a complete http draft is valid and becomes the API body', () => {
    expect(validateDraft(http)).toEqual({});
    expect(draftToInput({ ...http, tags: 'a, b,', conditions: 'status == 200\n\n' })).toMatchObject({
      type: 'http',
      name: 'web',
      url: 'https://example.com/health',
      method: 'GET',
      intervalSeconds: 30,
      tags: ['a', 'b'],
      conditions: ['status == 200'],
    });
  });

  it.each([
    ['an empty name', { name: '' }, 'name'],
    ['an url that is not one', { url: 'not a url' }, 'url'],
    ['an interval that is no number', { intervalSeconds: 'often' }, 'intervalSeconds'],
    ['a timeout over the interval', { intervalSeconds: '5', timeoutSeconds: '10' }, 'timeoutSeconds'],
    ['a tcp check without a port', { type: 'tcp', host: 'db.local', port: '' }, 'port'],
    ['a location twice', { locations: 'eu, eu' }, 'locations'],
  ])('%s is refused on its field with the contract’s message', (_name, change, field) => {
    const errors = validateDraft({ ...http, ...change });
    expect(Object.keys(errors)).toContain(field);
    expect(errors[field as keyof typeof errors]).toMatch(/\S/);
  });

  it('the API’s issues land on their fields, conditions by line', () => {
    expect(
      errorsFromIssues([
        { path: 'conditions.1', message: 'line 1, column 10: Unexpected token: EOF' },
        { path: 'url', message: '169.254.169.254 is in the denied network' },
        { path: 'headers.X', message: 'bad' },
      ]),
    ).toEqual({
      conditions: 'line 2: line 1, column 10: Unexpected token: EOF',
      url: '169.254.169.254 is in the denied network',
      form: 'headers.X: bad',
    });
  });

  it('a stored check of a type the form does not show keeps its own fields on save', () => {
    const stored = {
      id: 'c1',
      targetId: 'check:c1',
      version: 3,
      createdAt: 'x',
      updatedAt: 'y',
      type: 'postgres',
      name: 'db',
      host: 'db.local',
      port: 5432,
      database: 'app',
      intervalSeconds: 60,
      timeoutSeconds: 5,
      retries: 0,
      tags: ['t'],
      locations: [],
      conditions: [],
      paused: false,
    } as unknown as CheckDefinition;
    const body = draftToInput(draftFromCheck(stored));
    expect(body).toMatchObject({ type: 'postgres', name: 'db', database: 'app', host: 'db.local', port: 5432 });
    expect(body).not.toHaveProperty('version');
    expect(body).not.toHaveProperty('id');
  });
});
