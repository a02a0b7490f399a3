import { Liquid, type Template } from 'liquidjs';
import { toStorable, truncateText } from '@fleetwatch/contracts';

// Annotation and notification templates (issue 18) in Liquid, configured so a template written by an
// operator can neither read files nor exhaust the process:
//  - no file system: `templates: {}` makes every include/render/layout lookup fail, and those tags are
//    refused at parse time anyway, with a clear message;
//  - `ownPropertyOnly`: `{{ x.constructor }}` and other prototype members read as nothing;
//  - bounded parse size, render time and allocations (`parseLimit`, `renderLimit`, `memoryLimit`),
//    and rendered text cut at a bound;
//  - values are data: a target named `{{ 7 | plus: 1 }}` renders as that text, never as a template.
// Variables: alert.{name,state,severity,value,activeAt,firedAt,resolvedAt,endReason,endReasonText}, labels.<name>,
// target.{id,name,kind,site}, rule.{id,name}.

export const TEMPLATE_LIMITS = {
  /** Characters of one template (the contract allows 4096; this is a second fence). */
  maxTemplateLength: 8192,
  /** Characters of one rendered text. */
  maxOutputLength: 16_384,
  /**
   * Allocation budget of one render (liquidjs counts range items, array and string building): this is
   * what bounds loops — at most ~10,000 iterations in all — deterministically, whatever the machine's load.
   */
  memory: 10_000,
  /**
   * Wall time of one render. The allocation budget does not bound CPU: 10,000 iterations of 85 `contains` over
   * 1,000-character names took a second per render — per alert, per annotation, on the evaluator's one thread. An
   * honest template renders in well under a millisecond; this leaves room for a busy machine.
   */
  renderTimeMs: 100,
  /** Wall time of every template of one message (all its alerts' annotations): past it the rest are skipped. */
  messageRenderMs: 500,
  /** Wall time of every message of one evaluator decision (it renders before its transaction): past it, skipped. */
  passRenderMs: 1000,
  /** Wall time a template may take at save, rendered once with 1,024-character values: a slower one is refused. */
  trialRenderMs: 50,
} as const;

const FORBIDDEN_TAGS = ['include', 'render', 'layout', 'block'];

function makeEngine(): Liquid {
  const engine = new Liquid({
    templates: {},
    relativeReference: false,
    dynamicPartials: false,
    ownPropertyOnly: true,
    strictFilters: true,
    strictVariables: false,
    jsTruthy: false,
    cache: false,
    parseLimit: TEMPLATE_LIMITS.maxTemplateLength,
    renderLimit: TEMPLATE_LIMITS.renderTimeMs,
    memoryLimit: TEMPLATE_LIMITS.memory,
  });
  for (const tag of FORBIDDEN_TAGS)
    engine.registerTag(tag, {
      parse() {
        throw new Error(`the {% ${tag} %} tag is not available in alert templates`);
      },
      render() {
        return '';
      },
    });
  return engine;
}

const engine = makeEngine();

export interface TemplateContext {
  alert: {
    name: string;
    state: string;
    severity: string;
    value: number | null;
    activeAt: string | null;
    firedAt: string | null;
    resolvedAt: string | null;
    /** A resolved alert: why it ended (contracts ALERT_END_REASONS: condition_cleared, series_absent …), else null. */
    endReason?: string | null;
    /** The same as a person reads it ("series absent (no data for 5 min)"), else null. */
    endReasonText?: string | null;
  };
  labels: Readonly<Record<string, string>>;
  target: { id: string; name: string; kind: string; site: string };
  rule: { id: string; name: string };
}

/**
 * Values a template is tried with at save: every field as long as it can be (contracts: 1,024 characters) — the
 * slowest case for loops over values — and as short as it can be: long values spend the allocation budget in filters
 * such as `escape` and stop a render early that short ones let run on.
 */
const trialContext = (value: string): TemplateContext => ({
  alert: {
    name: value,
    state: 'firing',
    severity: 'critical',
    value: 1,
    activeAt: '2026-01-01T00:00:00.000Z',
    firedAt: '2026-01-01T00:00:00.000Z',
    resolvedAt: null,
  },
  labels: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`label${i}`, value])),
  target: { id: value, name: value, kind: 'check', site: value },
  rule: { id: value, name: value },
});
const TRIAL_CONTEXTS = [trialContext('x'.repeat(1024)), trialContext('x')];

/**
 * What one render of `template` with `context` says of the template itself: `slow` past `ms`, `object` when it prints
 * a whole object (`{{ labels }}`: an error with any values); null otherwise (other render errors are the values').
 */
function trialProblem(template: Template[], context: TemplateContext, ms: number): 'slow' | 'object' | null {
  try {
    engine.renderSync(template, plain(context) as object, { renderLimit: ms });
    return null;
  } catch (err) {
    const message = (err as Error).message;
    if (/render limit/i.test(message)) return 'slow';
    return /convert object to primitive/i.test(message) ? 'object' : null;
  }
}

/**
 * Why a template cannot be used, or null: for the configuration path, before a rule is stored. It is parsed, and
 * rendered with the longest and the shortest values: one that takes longer than TEMPLATE_LIMITS.trialRenderMs — twice
 * in a row, so a pause of a busy machine does not refuse an honest one — would hold the alert evaluator (it renders
 * every alert's annotations of each message).
 */
export function templateProblem(source: string): string | null {
  if (source.length > TEMPLATE_LIMITS.maxTemplateLength)
    return `longer than ${TEMPLATE_LIMITS.maxTemplateLength} characters`;
  let template: Template[];
  try {
    template = engine.parse(source);
  } catch (err) {
    return (err as Error).message;
  }
  const ms = TEMPLATE_LIMITS.trialRenderMs;
  for (const context of TRIAL_CONTEXTS) {
    const problem = trialProblem(template, context, ms);
    if (problem === 'object')
      return 'prints a whole object: name one of its fields ({{ labels.severity }}) or use the json filter';
    if (problem === 'slow' && trialProblem(template, context, ms) === 'slow')
      return `takes too long to render (over ${ms} ms with ${context.target.name.length === 1 ? 'one-character' : '1,024-character'} values): loop less`;
  }
  // Other render errors depend on the values (a filter on an absent one): the message shows them, in brackets.
  return null;
}

/** What is left of one message's render time (TEMPLATE_LIMITS.messageRenderMs), shared by its templates. */
export interface RenderBudget {
  deadline: number;
}

export function renderBudget(ms: number = TEMPLATE_LIMITS.messageRenderMs, now = Date.now()): RenderBudget {
  return { deadline: now + ms };
}

const SKIPPED = '[template skipped: this message used its render time]';

/** Parsed templates by source: rules are few and their annotations rendered often. */
const parsed = new Map<string, Template[]>();
const MAX_CACHED = 2000;

function parse(source: string): Template[] {
  let t = parsed.get(source);
  if (!t) {
    t = engine.parse(source);
    if (parsed.size >= MAX_CACHED) parsed.clear();
    parsed.set(source, t);
  }
  return t;
}

/**
 * Renders one template with data. A template that fails to parse or render gives its error in brackets
 * instead of throwing: a notification with a broken annotation still goes out.
 */
export function renderTemplate(source: string, context: TemplateContext, budget?: RenderBudget): string {
  let renderLimit: number = TEMPLATE_LIMITS.renderTimeMs;
  if (budget) {
    const left = budget.deadline - Date.now();
    if (left <= 0) return SKIPPED;
    renderLimit = Math.min(renderLimit, left);
  }
  let out: string;
  try {
    out = String(engine.renderSync(parse(source), plain(context) as object, { renderLimit }));
  } catch (err) {
    return `[template error: ${(err as Error).message.slice(0, 200)}]`;
  }
  // Filters such as `slice` can cut a surrogate pair: what goes out must still be storable.
  return toStorable(
    out.length > TEMPLATE_LIMITS.maxOutputLength ? `${truncateText(out, TEMPLATE_LIMITS.maxOutputLength - 1)}…` : out,
  );
}

/** Renders every annotation of a rule (within `budget`, when given: a message's whole render time). */
export function renderAnnotations(
  annotations: Readonly<Record<string, string>>,
  context: TemplateContext,
  budget?: RenderBudget,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations)) out[k] = renderTemplate(v, context, budget);
  return out;
}

/** A copy with null prototypes, so no template sees anything but the data itself. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const out = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}
