import fc from 'fast-check';
import { textProblem } from '../common/store-safe';
import { alertRuleSpecSchema } from './rule.schema';
import { silenceSpecSchema } from './silence.schema';
import { channelInputSchema, redactChannel, splitChannelSecrets } from './channel.schema';

// Alert configuration flows to Postgres (config versions, snapshots) and to members: whatever the
// schemas accept must be storable and read back equal, and secrets must never reach an answer.

/** Strings with the characters stores refuse mixed in. */
const nasty = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('a\u0000b', '\ud800', 'x\udfff', '😀', '{{ 7 }}', ''),
);

function everyString(value: unknown, visit: (s: string) => void): void {
  if (typeof value === 'string') visit(value);
  else if (Array.isArray(value)) value.forEach((v) => everyString(v, visit));
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) {
      visit(k);
      everyString(v, visit);
    }
}

describe('alert configuration is storable', () => {
  it('a rule the schema accepts holds only storable text and survives JSON unchanged', () => {
    fc.assert(
      fc.property(nasty, nasty, nasty, nasty, (name, summary, labelValue, description) => {
        const r = alertRuleSpecSchema.safeParse({
          name,
          description,
          condition: { type: 'status', statuses: ['DOWN'] },
          labels: { team: labelValue },
          annotations: { summary },
        });
        if (!r.success) return;
        everyString(r.data, (s) => expect(textProblem(s)).toBeNull());
        expect(alertRuleSpecSchema.parse(JSON.parse(JSON.stringify(r.data)))).toEqual(r.data);
      }),
    );
  });

  it('a silence the schema accepts holds only storable text', () => {
    fc.assert(
      fc.property(nasty, nasty, nasty, (value, createdBy, comment) => {
        const r = silenceSpecSchema.safeParse({
          matchers: [{ name: 'target', op: '=', value: `x${value}` }],
          startsAt: '2026-01-01T00:00:00Z',
          endsAt: '2026-01-02T00:00:00Z',
          createdBy,
          comment,
        });
        if (r.success) everyString(r.data, (s) => expect(textProblem(s)).toBeNull());
      }),
    );
  });

  it('no part of a secret reaches the redacted answer', () => {
    // A marker no public field contains, so a hit can only be the secret itself.
    const secret = fc
      .string({ minLength: 1, maxLength: 60 })
      .map((s) => `zz-secret-${s}`.trim())
      .filter((s) => textProblem(s) === null);
    fc.assert(
      fc.property(secret, secret, (hmac, routing) => {
        for (const input of [
          { type: 'webhook', name: 'w', url: 'https://hooks.example.com/in', secret: hmac, bearerToken: routing },
          { type: 'pagerduty', name: 'p', routingKey: routing },
          {
            type: 'email',
            name: 'e',
            host: 'smtp.example.com',
            from: 'a@example.com',
            to: ['b@example.com'],
            password: hmac,
          },
        ]) {
          const parsed = channelInputSchema.parse(input);
          const { config, secrets } = splitChannelSecrets(parsed);
          const answer = JSON.stringify(redactChannel(config, secrets as Record<string, string>));
          expect(Object.keys(secrets).length).toBeGreaterThan(0);
          expect(answer).not.toContain('zz-secret-');
        }
      }),
    );
  });
});
