import { SecretSealer } from '@fleetwatch/persistence';
import { ForbiddenError, InvalidError } from '@fleetwatch/domain';
import { channelInputSchema, splitChannelSecrets } from '@fleetwatch/contracts';
import { applyChanges, rebuild, upsertCount } from '../config/config-history';
import { configHash, configHashOfSnapshot, EMPTY_CONFIG_HASH } from '../config/config-hash';
import { alertEntryHash } from './alert-forms';
import { channelSecretsWrite, sealContext } from './channel-secrets';

// Pure parts of the alert configuration path: the secret changes of a channel write (keep, replace,
// remove, required, no key), and how alert areas enter versions' changes, snapshots and the hash.

const sealer = SecretSealer.fromText('c'.repeat(64));
const webhook = (extra: Record<string, unknown> = {}) =>
  channelInputSchema.parse({ type: 'webhook', name: 'w', url: 'https://x.example/h', ...extra });

describe('channelSecretsWrite', () => {
  it.each([
    ['new secret', null, { secret: 's1' }, { secret: 's1' }, ['secret']],
    ['absent keeps', { secret: 'old' }, {}, { secret: 'old' }, []],
    ['null removes', { secret: 'old' }, { secret: null }, {}, ['secret']],
    ['replace', { secret: 'old' }, { secret: 'new' }, { secret: 'new' }, ['secret']],
    ['null of nothing', null, { bearerToken: null }, {}, []],
  ] as const)('%s', (_what, stored, input, expected, diffPaths) => {
    const storedSealed = stored
      ? Object.fromEntries(Object.entries(stored).map(([f, v]) => [f, sealer.seal(v, sealContext('ch', f))]))
      : null;
    const w = channelSecretsWrite(
      sealer,
      'ch',
      webhook(input),
      storedSealed && { sealed: storedSealed, redacted: { secret: { set: true } } },
    );
    const opened = Object.fromEntries(
      Object.entries(w.sealed).map(([f, v]) => [f, sealer.open(v, sealContext('ch', f))]),
    );
    expect(opened).toEqual(expected);
    expect(w.diff.map((d) => d.path)).toEqual(diffPaths);
    expect(w.redacted).toEqual({ secret: { set: 'secret' in expected }, bearerToken: { set: false } });
    expect(JSON.stringify([w.config, w.redacted, w.diff])).not.toMatch(/s1|old|new"/);
  });

  it('a required secret missing is named; a secret with no key is refused', () => {
    const pd = channelInputSchema.parse({ type: 'pagerduty', name: 'p' });
    expect(() => channelSecretsWrite(sealer, 'p', pd, null)).toThrow(InvalidError);
    expect(() => channelSecretsWrite(null, 'w', webhook({ secret: 'x' }), null)).toThrow(ForbiddenError);
    expect(channelSecretsWrite(null, 'w', webhook(), null).sealed).toEqual({});
  });

  describe('a stored secret stays with its destination', () => {
    const sealedOf = (id: string, plain: Record<string, string>) =>
      Object.fromEntries(Object.entries(plain).map(([f, v]) => [f, sealer.seal(v, sealContext(id, f))]));
    const storedOf = (id: string, before: Record<string, unknown>, plain: Record<string, string>) => {
      const { config } = splitChannelSecrets(channelInputSchema.parse({ ...before, ...plain }));
      return { sealed: sealedOf(id, plain), redacted: {}, config };
    };
    const hook = { type: 'webhook', name: 'w', url: 'https://hooks.example/in' };
    const smtp = {
      type: 'email',
      name: 'e',
      host: 'smtp.example',
      port: 587,
      from: 'a@b.example',
      to: ['c@d.example'],
    };
    const pd = { type: 'pagerduty', name: 'p', eventsUrl: 'https://events.pagerduty.com/v2/enqueue' };

    it.each([
      [
        'webhook to another host',
        hook,
        { secret: 'k', bearerToken: 't' },
        { url: 'https://evil.example/in' },
        ['secret', 'bearerToken'],
      ],
      ['webhook https to http', hook, { bearerToken: 't' }, { url: 'http://hooks.example/in' }, ['bearerToken']],
      [
        'webhook to another port',
        hook,
        { bearerToken: 't' },
        { url: 'https://hooks.example:8443/in' },
        ['bearerToken'],
      ],
      ['SMTP host', smtp, { password: 'pw' }, { host: 'mx.evil.example' }, ['password']],
      ['SMTP port', smtp, { password: 'pw' }, { port: 2525 }, ['password']],
      [
        'SMTP without TLS from the start',
        { ...smtp, secure: true, port: 465 },
        { password: 'pw' },
        { secure: false },
        ['password'],
      ],
      ['SMTP login allowed without TLS', smtp, { password: 'pw' }, { allowPlaintextLogin: true }, ['password']],
      ['SMTP certificate no longer verified', smtp, { password: 'pw' }, { tlsVerify: false }, ['password']],
      [
        'PagerDuty events URL',
        pd,
        { routingKey: 'rk' },
        { eventsUrl: 'https://collector.evil.example/v2/enqueue' },
        ['routingKey'],
      ],
    ] as const)('%s: refused naming each secret not sent again', (_what, before, plain, change, paths) => {
      const stored = storedOf('ch', before, plain);
      const input = channelInputSchema.parse({ ...before, ...change });
      let err: unknown;
      try {
        channelSecretsWrite(sealer, 'ch', input, stored);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidError);
      expect((err as InvalidError).issues.map((i) => i.path)).toEqual(paths);
      expect(JSON.stringify([(err as Error).message, (err as InvalidError).issues])).not.toMatch(/"(k|t|pw|rk)"/);
      // Sent again, or removed, with the move: accepted.
      const resent = Object.fromEntries(paths.map((f) => [f, `new-${f}`]));
      expect(() =>
        channelSecretsWrite(sealer, 'ch', channelInputSchema.parse({ ...before, ...change, ...resent }), stored),
      ).not.toThrow();
      const removed = Object.fromEntries(paths.map((f) => [f, null]));
      if (before.type === 'webhook')
        expect(
          channelSecretsWrite(sealer, 'ch', channelInputSchema.parse({ ...before, ...change, ...removed }), stored)
            .sealed,
        ).toEqual({});
    });

    it.each([
      [
        'webhook path and query on the same origin',
        hook,
        { bearerToken: 't' },
        { url: 'https://HOOKS.example:443/other?x=1' },
      ],
      ['webhook headers and name', hook, { secret: 'k' }, { name: 'renamed', headers: { 'x-team': 'ops' } }],
      ['SMTP recipients and sender', smtp, { password: 'pw' }, { to: ['x@y.example'], from: 'z@b.example' }],
      ['SMTP host spelled in capitals', smtp, { password: 'pw' }, { host: 'SMTP.example' }],
      // A channel stored before tlsVerify, sent back saying what absent meant.
      ['SMTP certificate verified, said so', smtp, { password: 'pw' }, { tlsVerify: true }],
      [
        'Slack (its URL is the secret)',
        { type: 'slack', name: 's' },
        { url: 'https://hooks.slack.example/T/B/x' },
        { channel: '#ops' },
      ],
    ] as const)('%s: kept', (_what, before, plain, change) => {
      const stored = storedOf('ch', before, plain);
      const w = channelSecretsWrite(sealer, 'ch', channelInputSchema.parse({ ...before, ...change }), stored);
      expect(Object.keys(w.sealed).sort()).toEqual(Object.keys(plain).sort());
      expect(w.diff).toEqual([]);
    });

    it('a new channel, or a write without the stored form, has nothing to compare', () => {
      expect(() => channelSecretsWrite(sealer, 'n', webhook({ bearerToken: 't' }), null)).not.toThrow();
    });
  });

  it('a URL secret shows its origin only', () => {
    const slack = channelInputSchema.parse({ type: 'slack', name: 's', url: 'https://hooks.example/T0/B0/xyz' });
    expect(channelSecretsWrite(sealer, 's', slack, null).redacted).toEqual({
      url: { set: true, hint: 'https://hooks.example/…' },
    });
  });
});

describe('alert areas in versions and the hash', () => {
  const rule = { name: 'r', for: '1m' };
  it('changes apply by area; empty alert areas stay out of the snapshot', () => {
    const s1 = applyChanges({ checks: {} }, { checks: {}, alertRules: { a: rule, b: rule } });
    expect(s1).toEqual({ checks: {}, alertRules: { a: rule, b: rule } });
    const s2 = applyChanges(s1, { checks: { web: { type: 'tcp' } }, alertRules: { a: null, b: null } });
    expect(s2).toEqual({ checks: { web: { type: 'tcp' } } });
    expect(upsertCount({ checks: { web: {} }, channels: { c: {}, d: null }, maintenanceWindows: { m: {} } })).toBe(3);
    expect(
      rebuild([
        { version: 1, changes: { checks: {}, channels: { c: { type: 'teams' } } } },
        { version: 2, changes: { checks: {}, alertRules: { a: rule } } },
      ]),
    ).toEqual({ checks: {}, channels: { c: { type: 'teams' } }, alertRules: { a: rule } });
  });

  it('the hash: checks alone as before; alert entries after them by area and id; area and id inside each', () => {
    expect(configHashOfSnapshot({ checks: {} })).toBe(EMPTY_CONFIG_HASH);
    const withRule = configHashOfSnapshot({ checks: {}, alertRules: { a: rule } });
    expect(withRule).not.toBe(EMPTY_CONFIG_HASH);
    expect(withRule).toBe(configHash([], { alertRules: [{ id: 'a', hash: alertEntryHash('alertRules', 'a', rule) }] }));
    // The same form under another area or id is another entry.
    expect(configHashOfSnapshot({ checks: {}, maintenanceWindows: { a: rule } })).not.toBe(withRule);
    expect(configHashOfSnapshot({ checks: {}, alertRules: { b: rule } })).not.toBe(withRule);
    // Order of writing does not matter.
    expect(configHashOfSnapshot({ checks: {}, alertRules: { b: rule, a: rule } })).toBe(
      configHashOfSnapshot({ checks: {}, alertRules: { a: rule, b: rule } }),
    );
  });
});
