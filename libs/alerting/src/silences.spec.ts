import { silenceSpecSchema, type Silence, type SilenceInput } from '@fleetwatch/contracts';
import { compileSilence, isSilenced, matchersMatch, silenceFromAlert, silencesFor } from './silences';

const labels = { alertname: 'Target down', severity: 'critical', rule_id: 'r1', target: 'check:web-1', team: 'web' };

function silence(id: string, input: Partial<SilenceInput>): Silence {
  return {
    id,
    ...silenceSpecSchema.parse({
      matchers: [{ name: 'alertname', op: '=', value: 'Target down' }],
      startsAt: '2026-01-01T10:00:00Z',
      endsAt: '2026-01-01T12:00:00Z',
      createdBy: 'alice',
      comment: 'deploy',
      ...input,
    }),
  };
}

describe('silence matching', () => {
  it.each([
    [[{ name: 'team', op: '=', value: 'web' }], true],
    [[{ name: 'team', op: '=', value: 'db' }], false],
    [[{ name: 'team', op: '!=', value: 'db' }], true],
    [[{ name: 'target', op: '=~', value: 'check:web-.*' }], true],
    [[{ name: 'target', op: '=~', value: 'web' }], false], // anchored: a part is not enough
    // RE2's (?i) as in Alertmanager: case-insensitive, still a full match.
    [[{ name: 'severity', op: '=~', value: '(?i)CRITICAL' }], true],
    [[{ name: 'severity', op: '=~', value: '(?i)CRIT' }], false],
    [[{ name: 'severity', op: '=~', value: 'CRITICAL' }], false],
    [[{ name: 'severity', op: '!~', value: '(?i)Critical|warning' }], false],
    [[{ name: 'target', op: '=~', value: '(?im)CHECK:WEB-\\d' }], true],
    [[{ name: 'target', op: '!~', value: 'check:db-.*' }], true],
    [[{ name: 'missing', op: '=', value: '' }], true], // an absent label reads as ""
    [[{ name: 'missing', op: '!=', value: 'x' }], true],
    [[{ name: 'missing', op: '=~', value: '.+' }], false],
    [
      [
        { name: 'team', op: '=', value: 'web' },
        { name: 'severity', op: '=', value: 'warning' },
      ],
      false, // all matchers must match
    ],
    [
      [
        { name: 'team', op: '=', value: 'web' },
        { name: 'severity', op: '=~', value: 'critical|warning' },
      ],
      true,
    ],
  ] as const)('%j matches: %s', (matchers, expected) => {
    expect(matchersMatch(matchers as never, labels)).toBe(expected);
  });

  it.each([
    ['2026-01-01T09:59:59.999Z', false],
    ['2026-01-01T10:00:00Z', true],
    ['2026-01-01T11:59:59.999Z', true],
    ['2026-01-01T12:00:00Z', false],
  ])('active at %s: %s (startsAt ≤ now < endsAt)', (at, expected) => {
    const s = compileSilence(silence('s1', {}));
    expect(isSilenced([s], labels, Date.parse(at))).toBe(expected);
  });

  it('lists the silences muting an alert', () => {
    const all = [
      silence('a', {}),
      silence('b', { matchers: [{ name: 'team', op: '=', value: 'db' }] }),
      silence('c', { matchers: [{ name: 'severity', op: '=', value: 'critical' }] }),
    ].map(compileSilence);
    expect(silencesFor(all, labels, Date.parse('2026-01-01T11:00:00Z')).map((s) => s.silence.id)).toEqual(['a', 'c']);
  });

  it('a silence made from an alert is valid and matches that alert only', () => {
    const spec = silenceFromAlert(
      { ...labels, mount: '/' },
      {
        startsAt: '2026-01-01T10:00:00Z',
        endsAt: '2026-01-01T11:00:00Z',
        createdBy: 'bob',
        comment: 'known',
        ruleLabels: ['team'],
      },
    );
    expect(silenceSpecSchema.parse(spec).matchers.map((m) => m.name)).toEqual([
      'alertname',
      'mount',
      'rule_id',
      'target',
    ]);
    const s = compileSilence({ id: 'x', ...spec });
    const now = Date.parse('2026-01-01T10:30:00Z');
    expect(isSilenced([s], { ...labels, mount: '/' }, now)).toBe(true);
    expect(isSilenced([s], { ...labels, mount: '/data' }, now)).toBe(false);
    expect(isSilenced([s], { ...labels, mount: '/', target: 'check:web-2' }, now)).toBe(false);
  });
});
