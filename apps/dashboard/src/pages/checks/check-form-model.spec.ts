import { describe, expect, it } from 'vitest';
import type { CheckView } from '@fleetwatch/contracts';
import {
  draftFromCheck,
  draftToInput,
  errorsFromIssues,
  NEW_DRAFT,
  oneLine,
  scheduleText,
  validateDraft,
} from './check-form-model';

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
      headers: 'X: bad',
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
    } as unknown as CheckView;
    const body = draftToInput(draftFromCheck(stored));
    expect(body).toMatchObject({ type: 'postgres', name: 'db', database: 'app', host: 'db.local', port: 5432 });
    expect(body).not.toHaveProperty('version');
    expect(body).not.toHaveProperty('id');
  });

  it('the list says how often a check is due: a heartbeat by its period and grace (its interval is unused)', () => {
    const push = { type: 'push', intervalSeconds: 30, periodSeconds: 60, graceSeconds: 30 } as unknown as CheckView;
    const http = { type: 'http', intervalSeconds: 30 } as unknown as CheckView;
    expect(scheduleText(push)).toBe('60 s + 30 s grace');
    expect(scheduleText(http)).toBe('30 s');
  });

  it('a condition written over several lines (a YAML block scalar) is saved again whole, and valid', () => {
    const stored = {
      id: 'c2',
      targetId: 'check:c2',
      version: 1,
      createdAt: 'x',
      updatedAt: 'y',
      type: 'tcp',
      name: 'db',
      host: 'db.local',
      port: 5432,
      intervalSeconds: 60,
      timeoutSeconds: 5,
      retries: 0,
      tags: [],
      locations: [],
      conditions: ['ok &&\n  latency < 300', 'latency >= 0'],
      paused: false,
    } as unknown as CheckView;
    const draft = draftFromCheck(stored);
    expect(draft.conditions).toBe('ok && latency < 300\nlatency >= 0');
    expect(validateDraft(draft).conditions).toBeUndefined();
    expect(draftToInput(draft)).toMatchObject({ conditions: ['ok && latency < 300', 'latency >= 0'] });
    // A line break inside a triple-quoted string is part of the string: left as written.
    expect(oneLine("'''a\nb''' != ''")).toBe("'''a\nb''' != ''");
  });
});

describe('an http check with credential headers (write-only: the API answers `{set: true}`)', () => {
  const stored = {
    id: 'c2',
    targetId: 'check:c2',
    version: 7,
    createdAt: 'x',
    updatedAt: 'y',
    type: 'http',
    name: 'private',
    url: 'https://app.example/health',
    method: 'GET',
    headers: { Authorization: { set: true }, 'X-Api-Key': { set: true }, Accept: 'text/plain' },
    jsonPath: [],
    followRedirects: true,
    maxRedirects: 5,
    tlsVerify: true,
    intervalSeconds: 30,
    timeoutSeconds: 10,
    retries: 0,
    tags: [],
    locations: [],
    conditions: [],
    paused: false,
  } as unknown as CheckView;

  it('shows them as stored and not shown: the lines hold the other headers only', () => {
    const d = draftFromCheck(stored);
    expect(d.storedSecrets).toEqual(['Authorization', 'X-Api-Key']);
    expect(d.headers).toBe('Accept: text/plain');
    expect(JSON.stringify(d)).not.toMatch(/"set"/);
    expect(d.extra).not.toHaveProperty('headers');
  });

  it('a save that leaves them alone keeps them ({set: true} sent back), and is valid', () => {
    const d = { ...draftFromCheck(stored), tags: 'edited' };
    expect(validateDraft(d)).toEqual({});
    expect(draftToInput(d)['headers']).toEqual({
      Accept: 'text/plain',
      Authorization: { set: true },
      'X-Api-Key': { set: true },
    });
  });

  it('a value typed replaces one, a removal sends null; a line for the same name is its new value', () => {
    const d = draftFromCheck(stored);
    const edited = {
      ...d,
      secretValues: { Authorization: '  Bearer new-token ' },
      removeSecrets: { 'X-Api-Key': true },
    };
    expect(validateDraft(edited)).toEqual({});
    expect(draftToInput(edited)['headers']).toEqual({
      Accept: 'text/plain',
      Authorization: 'Bearer new-token',
      'X-Api-Key': null,
    });
    const typed = { ...d, headers: 'Accept: text/plain\nx-api-key: typed-key' };
    expect(draftToInput(typed)['headers']).toEqual({
      Accept: 'text/plain',
      'x-api-key': 'typed-key',
      Authorization: { set: true },
    });
  });

  it('a bad value typed is refused on the headers field; the owner’s refusal of a move names the header', () => {
    const d = { ...draftFromCheck(stored), secretValues: { Authorization: 'a\u0000b' } };
    expect(validateDraft(d).headers).toMatch(/\S/);
    expect(
      errorsFromIssues([{ path: 'headers.Authorization', message: 'the check now sends to https://other.example' }]),
    ).toEqual({ headers: 'Authorization: the check now sends to https://other.example' });
  });
});
