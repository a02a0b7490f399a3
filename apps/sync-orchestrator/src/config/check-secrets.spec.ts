import { checkView, isSecretHeader, type CheckSpec } from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import { configFormOf, parseCheck } from './check-form';
import { checkHash } from './config-hash';
import { checkDiff } from './config-plan';
import { redactAuditDiff, redactSnapshot, takeSecretMarks, withStoredSecrets } from './check-secrets';

// An http check's credential headers on a write (check-secrets.ts): which names, what a write keeps, replaces and
// removes, the move to another origin, and what forms and diffs show (never a value).

const http = (extra: Record<string, unknown> = {}): CheckSpec => {
  const p = parseCheck({ name: 'web', type: 'http', url: 'https://app.example/health', ...extra });
  if (!p.ok) throw new Error(JSON.stringify(p.issues));
  return p.spec;
};
const headersOf = (s: CheckSpec) => (s.type === 'http' ? s.headers : {});

/** The spec a write of `input` stores over `stored` (null: a new check). */
function write(input: Record<string, unknown>, stored: CheckSpec | null): CheckSpec {
  const { input: values, marks } = takeSecretMarks({
    name: 'web',
    type: 'http',
    url: 'https://app.example/health',
    ...input,
  });
  const p = parseCheck(values);
  if (!p.ok) throw new Error(JSON.stringify(p.issues));
  return withStoredSecrets(p.spec, marks, stored).spec;
}

function refusal(fn: () => unknown): InvalidError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InvalidError) return e;
    throw e;
  }
  throw new Error('expected an InvalidError');
}

describe('credential header names (one list, any case)', () => {
  it.each([
    'Authorization',
    'proxy-authorization',
    'Cookie',
    'X-Api-Key',
    'x-apikey',
    'X-Auth-Token',
    'X-Vault-Token',
    'X-Client-Secret',
    'X-Password',
    'Private-Key',
  ])('%s is write-only', (name) => expect(isSecretHeader(name)).toBe(true));

  it.each(['Accept', 'User-Agent', 'X-Trace', 'Content-Type', 'X-Request-Id'])('%s is not', (name) =>
    expect(isSecretHeader(name)).toBe(false),
  );
});

describe('a write of credential headers', () => {
  const stored = http({ headers: { Authorization: 'Bearer s3cret', 'X-Api-Key': 'k1', Accept: 'text/plain' } });

  it('keeps what it leaves out or sends back as `{set: true}`; replaces by value (any spelling); null removes', () => {
    expect(headersOf(write({ url: 'https://app.example/health', headers: { Accept: 'text/plain' } }, stored))).toEqual({
      Authorization: 'Bearer s3cret',
      'X-Api-Key': 'k1',
      Accept: 'text/plain',
    });
    expect(
      headersOf(write({ url: 'https://app.example/health', ...checkView({ ...stored } as never) }, stored)),
    ).toEqual(headersOf(stored));
    expect(
      headersOf(
        write(
          { url: 'https://app.example/health', headers: { authorization: 'Bearer new', 'X-API-KEY': null } },
          stored,
        ),
      ),
    ).toEqual({ authorization: 'Bearer new' });
  });

  it('a `{set}` with nothing stored of that name is refused naming it; a null is nothing to remove', () => {
    const e = refusal(() => write({ url: 'https://app.example/', headers: { Cookie: { set: true } } }, stored));
    expect(e.issues.map((i) => i.path)).toEqual(['headers.Cookie']);
    expect(refusal(() => write({ headers: { Authorization: { set: true } } }, null)).issues[0].path).toBe(
      'headers.Authorization',
    );
    expect(headersOf(write({ headers: { Authorization: null, Accept: '*/*' } }, null))).toEqual({ Accept: '*/*' });
  });

  it.each([
    ['another host', 'https://evil.example/health'],
    ['http instead of https', 'http://app.example/health'],
    ['another port', 'https://app.example:8443/health'],
  ])('moved to %s: refused naming each stored value not sent again; sent again or null: accepted', (_what, url) => {
    const e = refusal(() => write({ url, headers: { Accept: 'text/plain' } }, stored));
    expect(e.issues.map((i) => i.path)).toEqual(['headers.Authorization', 'headers.X-Api-Key']);
    expect(JSON.stringify([e.message, e.issues])).not.toMatch(/s3cret|k1/);
    // `{set}` sent back is no resend either.
    expect(
      refusal(() => write({ url, headers: { Authorization: { set: true }, 'X-Api-Key': null } }, stored)).issues.map(
        (i) => i.path,
      ),
    ).toEqual(['headers.Authorization']);
    expect(headersOf(write({ url, headers: { Authorization: 'Bearer other', 'X-Api-Key': null } }, stored))).toEqual({
      Authorization: 'Bearer other',
    });
  });

  it('another path, query or spelling of the same origin keeps them', () => {
    expect(headersOf(write({ url: 'https://APP.example:443/other?x=1' }, stored))).toMatchObject({
      Authorization: 'Bearer s3cret',
      'X-Api-Key': 'k1',
    });
  });

  it('anything but an http check with headers passes as it is', () => {
    expect(takeSecretMarks({ type: 'tcp', host: 'h', port: 1 }).marks).toEqual({ keep: [], remove: [] });
    expect(takeSecretMarks('x').input).toBe('x');
  });
});

describe('what forms, hashes and diffs show', () => {
  const a = http({ headers: { Authorization: 'Bearer one', 'X-Trace': 't' } });
  const b = http({ headers: { Authorization: 'Bearer two', 'X-Trace': 't' } });

  it('the config form (export, versions, hashes) holds `{set: true}`, never the value', () => {
    expect(configFormOf(a)).toMatchObject({ headers: { Authorization: { set: true }, 'X-Trace': 't' } });
    expect(JSON.stringify(configFormOf(a))).not.toContain('one');
    expect(checkHash(a)).toBe(checkHash(b));
    expect(checkView({ ...a, id: 'i', targetId: 't', version: 1, createdAt: '', updatedAt: '' })).toMatchObject({
      headers: { Authorization: { set: true }, 'X-Trace': 't' },
    });
  });

  it('an audit diff says set, new value or removed', () => {
    expect(checkDiff(a, b)).toEqual([{ path: 'headers.Authorization', before: '(set)', after: '(set, new value)' }]);
    expect(checkDiff(a, a)).toEqual([]);
    expect(checkDiff(null, a)).toEqual(
      expect.arrayContaining([
        { path: 'headers', after: { 'X-Trace': 't' } },
        { path: 'headers.Authorization', after: '(set, new value)' },
      ]),
    );
    const removed = http({ headers: { 'X-Trace': 't' }, intervalSeconds: 60 });
    expect(checkDiff(a, removed)).toEqual([
      { path: 'headers.Authorization', before: '(set)', after: '(removed)' },
      { path: 'intervalSeconds', after: 60 },
    ]);
    expect(JSON.stringify([checkDiff(a, b), checkDiff(null, a), checkDiff(a, null)])).not.toMatch(/Bearer/);
    // A dry run given a value: a change whatever the value.
    expect(checkDiff(a, a, new Set(['Authorization']))).toEqual([
      {
        path: 'headers.Authorization',
        before: '(set)',
        after: '(set: a value given, compared with the stored one when applied)',
      },
    ]);
  });

  it('entries and snapshots written before headers were write-only are read redacted', () => {
    expect(
      redactAuditDiff([
        { path: 'headers', after: { Authorization: 'Bearer old', Accept: '*/*' } },
        { path: 'headers.Cookie', before: 'sid=old', after: 'sid=new' },
        { path: 'headers.Accept', before: 'a' },
        { path: 'headers.X-Api-Key', after: '(set, new value)' },
      ]),
    ).toEqual([
      { path: 'headers', after: { Authorization: '(set)', Accept: '*/*' } },
      { path: 'headers.Cookie', before: '(set)', after: '(set)' },
      { path: 'headers.Accept', before: 'a' },
      { path: 'headers.X-Api-Key', after: '(set, new value)' },
    ]);
    expect(
      redactSnapshot({ checks: { web: { type: 'http', url: 'u', headers: { Cookie: 'sid=old', A: 'b' } } } }),
    ).toEqual({ checks: { web: { type: 'http', url: 'u', headers: { Cookie: { set: true }, A: 'b' } } } });
  });
});
