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
// Variables: alert.{name,state,severity,value,activeAt,firedAt,resolvedAt}, labels.<name>,
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
  /** A last fence in wall time, generous so a busy machine never fails an honest template. */
  renderTimeMs: 1000,
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
  };
  labels: Readonly<Record<string, string>>;
  target: { id: string; name: string; kind: string; site: string };
  rule: { id: string; name: string };
}

/** Why a template cannot be used, or null: for the configuration path, before a rule is stored. */
export function templateProblem(source: string): string | null {
  if (source.length > TEMPLATE_LIMITS.maxTemplateLength)
    return `longer than ${TEMPLATE_LIMITS.maxTemplateLength} characters`;
  try {
    engine.parse(source);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

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
export function renderTemplate(source: string, context: TemplateContext): string {
  let out: string;
  try {
    out = String(engine.renderSync(parse(source), plain(context) as object));
  } catch (err) {
    return `[template error: ${(err as Error).message.slice(0, 200)}]`;
  }
  // Filters such as `slice` can cut a surrogate pair: what goes out must still be storable.
  return toStorable(
    out.length > TEMPLATE_LIMITS.maxOutputLength ? `${truncateText(out, TEMPLATE_LIMITS.maxOutputLength - 1)}…` : out,
  );
}

/** Renders every annotation of a rule. */
export function renderAnnotations(
  annotations: Readonly<Record<string, string>>,
  context: TemplateContext,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations)) out[k] = renderTemplate(v, context);
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
