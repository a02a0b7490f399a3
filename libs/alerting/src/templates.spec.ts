import fc from 'fast-check';
import { DEFAULT_ALERT_RULES, textProblem } from '@fleetwatch/contracts';
import {
  renderAnnotations,
  renderBudget,
  renderTemplate,
  templateProblem,
  TEMPLATE_LIMITS,
  type TemplateContext,
} from './templates';

const ctx = (over: Partial<TemplateContext['target']> = {}): TemplateContext => ({
  alert: {
    name: 'Target down',
    state: 'firing',
    severity: 'critical',
    value: 97.25,
    activeAt: '2026-01-01T00:00:00.000Z',
    firedAt: '2026-01-01T00:01:00.000Z',
    resolvedAt: null,
  },
  labels: { alertname: 'Target down', target: 'check:web', mount: '/' },
  target: { id: 'check:web', name: 'Web', kind: 'check', site: 'a', ...over },
  rule: { id: 'r1', name: 'Target down' },
});

describe('alert templates (Liquid, no file system, bounded)', () => {
  it('renders variables and filters', () => {
    expect(renderTemplate('{{ target.name }} is {{ alert.state }} ({{ alert.value | round: 1 }} %)', ctx())).toBe(
      'Web is firing (97.3 %)',
    );
    expect(renderAnnotations({ s: '{{ labels.mount }}', t: '{{ rule.id }}' }, ctx())).toEqual({ s: '/', t: 'r1' });
  });

  it.each([
    '{{ 7 | plus: 1 }}',
    '{% raw %}{{ x }}{% endraw %}',
    '{% include "/etc/passwd" %}',
    '{{ target.constructor }}',
    "{% assign x = 'y' %}",
  ])('a target named %j comes out as that text (values are never parsed)', (name) => {
    expect(renderTemplate('{{ target.name }}', ctx({ name }))).toBe(name);
  });

  it('any target name renders as itself', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (name) => {
        expect(renderTemplate('[{{ target.name }}]', ctx({ name }))).toBe(`[${name}]`);
      }),
    );
  });

  it.each([
    ['{% include "x" %}', /include.* not available/],
    ['{% render "x" %}', /render.* not available/],
    ['{% layout "x" %}', /layout.* not available/],
    ['{{ x | nosuchfilter }}', /undefined filter/],
    ['{% if %}', /.+/],
  ])('refuses %j at validation', (source, message) => {
    expect(templateProblem(source)).toMatch(message);
  });

  it('prototype members read as nothing', () => {
    expect(renderTemplate('[{{ target.constructor }}][{{ labels.__proto__ }}][{{ alert.toString }}]', ctx())).toBe(
      '[][][]',
    );
  });

  it('loops and output are bounded; errors render in brackets instead of throwing', () => {
    // Whichever bound stops it first: the allocations on a quiet machine, the 100 ms render time on a loaded one.
    const stopped = /^\[template error: (memory alloc limit exceeded|template render limit exceeded)/;
    expect(renderTemplate('{% for i in (1..100000000) %}x{% endfor %}', ctx())).toMatch(stopped);
    expect(renderTemplate('{% for i in (1..200) %}{% for j in (1..200) %}x{% endfor %}{% endfor %}', ctx())).toMatch(
      stopped,
    );
    const big = renderTemplate('{% for i in (1..5000) %}0123456789{% endfor %}', ctx());
    expect(big.length).toBeLessThanOrEqual(TEMPLATE_LIMITS.maxOutputLength);
    expect(big.endsWith('…')).toBe(true);
    expect(templateProblem('x'.repeat(TEMPLATE_LIMITS.maxTemplateLength + 1))).toMatch(/longer than/);
  });

  // 3,946 characters (the contract allows 4,096), within the allocation budget: 9,990 iterations of 85 `contains`.
  const HEAVY = `{% for i in (1..9990) %}${'{% if target.name contains "y" %}{% endif %}'.repeat(85)}{% endfor %}`;

  it('a template too slow to render is refused at save, naming why; honest ones are not', () => {
    expect(HEAVY.length).toBeLessThan(4096);
    expect(templateProblem(HEAVY)).toMatch(/^takes too long to render \(over 50 ms with 1,024-character values\)/);
    // Long values spend the allocation budget in `escape` and stop the trial at once; short ones let the loop run.
    const escaped = `${'{% assign a = rule.name | escape %}'.repeat(9)}${HEAVY}`;
    expect(templateProblem(escaped)).toMatch(/^takes too long to render \(over 50 ms with one-character values\)/);
    // A whole object printed renders as an error whatever the values: refused, saying what to write instead.
    expect(templateProblem('{{ labels }}')).toMatch(/^prints a whole object: name one of its fields/);
    expect(templateProblem('Alert {{ alert }}')).toMatch(/^prints a whole object/);
    expect(templateProblem('{{ labels | json }}')).toBeNull();
    // A loop that fits: accepted.
    expect(
      templateProblem('{% for l in (1..16) %}{{ target.name | upcase }}{% endfor %} {{ labels.mount }}'),
    ).toBeNull();
    // A render error that depends on the values is not a reason to refuse (it shows in brackets when it happens).
    expect(templateProblem('{{ alert.resolvedAt | date: "%H:%M" }}')).toBeNull();
  });

  it("one message's templates share a render budget: a slow one stored before cannot hold the evaluator", () => {
    const long = ctx({ name: 'x'.repeat(1024) });
    const started = Date.now();
    const one = renderTemplate(HEAVY, long);
    expect(one).toMatch(/^\[template error: template render limit exceeded/);
    // 3 alerts × 4 such annotations took 12 s (1 s each); now the message's budget bounds them all.
    const budget = renderBudget();
    const rendered = Array.from({ length: 3 }, () =>
      renderAnnotations({ a: HEAVY, b: HEAVY, c: HEAVY, d: HEAVY }, long, budget),
    );
    const took = Date.now() - started;
    expect(took).toBeLessThan(TEMPLATE_LIMITS.renderTimeMs + TEMPLATE_LIMITS.messageRenderMs + 1_000);
    expect(rendered.at(-1)?.['d']).toBe('[template skipped: this message used its render time]');
    // An honest template of the same message after the budget is spent is skipped too — but one with its own budget renders.
    expect(renderTemplate('{{ target.name | size }}', long, renderBudget())).toBe('1024');
  });

  it('output is always storable (a slice through a surrogate pair is repaired)', () => {
    const out = renderTemplate('{{ target.name | slice: 0, 1 }}', ctx({ name: '😀x' }));
    expect(textProblem(out)).toBeNull();
  });

  it("the shipped rules' annotations are valid templates", () => {
    for (const rule of DEFAULT_ALERT_RULES)
      for (const source of Object.values(rule.annotations)) expect(templateProblem(source)).toBeNull();
    const down = DEFAULT_ALERT_RULES[0];
    expect(renderTemplate(down.annotations['summary'], ctx())).toBe('Web is down');
  });
});
