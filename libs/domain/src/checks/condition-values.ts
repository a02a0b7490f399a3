import { CONDITION_VARIABLES } from '@fleetwatch/contracts';

// How a probe's facts become CEL values, and how a failed condition shows the values it
// read. CEL has int and double where JS has one number: cel-js wants ints as BigInt and
// doubles as numbers, and refuses `dyn<double> + int`. A JSON body's `"count": 5` is
// meant as an integer by whoever wrote `body.count + 1 > 5`, so whole numbers inside
// `body`, `cert` and `result` become BigInt; fractions, huge and non-finite numbers stay
// doubles (cel-js compares int with double, so `body.ratio > 0` and `body.count > 3.5`
// both work). Objects become Maps so no key, not even `constructor`, reaches a prototype.

/** Nesting deeper than this is passed on unconverted (numbers there stay doubles) instead of risking the stack. */
const MAX_DEPTH = 64;

export function toCelValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((v) => toCelValue(v, depth + 1));
  if (value instanceof Map) {
    const out = new Map<unknown, unknown>();
    for (const [k, v] of value) out.set(k, toCelValue(v, depth + 1));
    return out;
  }
  if (value instanceof Date || value instanceof Uint8Array) return value;
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out.set(k, toCelValue(v, depth + 1));
  return out;
}

/** A CEL map<string, string> from a plain record (header names such as `constructor` included). */
export function stringMap(record: Readonly<Record<string, string>>): Map<string, string> {
  return new Map(Object.entries(record));
}

/** An access path in an expression that starts at a condition variable: `body.items[0].ok`, `latency`. */
export interface ValuePath {
  text: string;
  root: string;
  keys: (string | bigint)[];
}

/** A `metric("name")` / `metric("name", {"k": "v"})` call with literal arguments. */
export interface MetricCall {
  text: string;
  name: string;
  labels?: Record<string, string>;
}

interface Node {
  op: string;
  args: unknown;
}

const isNode = (x: unknown): x is Node => typeof x === 'object' && x !== null && 'op' in x && 'args' in x;

function pathOf(node: Node): ValuePath | null {
  if (node.op === 'id') {
    const name = node.args as string;
    return Object.hasOwn(CONDITION_VARIABLES, name) ? { text: name, root: name, keys: [] } : null;
  }
  if (node.op === '.' || node.op === '[]') {
    const [target, key] = node.args as [Node, unknown];
    const base = isNode(target) ? pathOf(target) : null;
    if (!base) return null;
    if (node.op === '.' && typeof key === 'string')
      return { ...base, text: `${base.text}.${key}`, keys: [...base.keys, key] };
    if (isNode(key) && key.op === 'value' && (typeof key.args === 'string' || typeof key.args === 'bigint'))
      return { ...base, text: `${base.text}[${literal(key.args)}]`, keys: [...base.keys, key.args] };
  }
  return null;
}

function metricOf(node: Node): MetricCall | null {
  if (node.op !== 'call') return null;
  const [fn, params] = node.args as [string, Node[]];
  if (fn !== 'metric' || !params[0] || params[0].op !== 'value' || typeof params[0].args !== 'string') return null;
  const name = params[0].args;
  if (params.length === 1) return { text: `metric(${literal(name)})`, name };
  const map = params[1];
  if (params.length !== 2 || map.op !== 'map') return null;
  const labels: Record<string, string> = {};
  for (const [k, v] of map.args as [Node, Node][]) {
    if (k.op !== 'value' || v.op !== 'value' || typeof k.args !== 'string' || typeof v.args !== 'string') return null;
    labels[k.args] = v.args;
  }
  const shown = Object.entries(labels).map(([k, v]) => `${literal(k)}: ${literal(v)}`);
  return { text: `metric(${literal(name)}, {${shown.join(', ')}})`, name, labels };
}

/** The variable paths and metric calls an expression reads, outermost first, each once. */
export function readsOf(ast: unknown): { paths: ValuePath[]; metrics: MetricCall[] } {
  const paths = new Map<string, ValuePath>();
  const metrics = new Map<string, MetricCall>();
  const visit = (node: Node): void => {
    const path = pathOf(node);
    if (path) {
      paths.set(path.text, path);
      return;
    }
    const call = metricOf(node);
    if (call) metrics.set(call.text, call);
    const children = Array.isArray(node.args) ? node.args.flat(2) : [node.args];
    for (const child of children) if (isNode(child)) visit(child);
  };
  if (isNode(ast)) visit(ast);
  return { paths: [...paths.values()], metrics: [...metrics.values()] };
}

const ABSENT = Symbol('absent');

/** Follows `path` through converted facts (Maps, arrays), as CEL would, never into a prototype. */
export function valueAt(context: Readonly<Record<string, unknown>>, path: ValuePath): unknown {
  let current: unknown = Object.hasOwn(context, path.root) ? context[path.root] : ABSENT;
  for (const key of path.keys) {
    if (current instanceof Map) current = current.has(key) ? current.get(key) : ABSENT;
    else if (Array.isArray(current) && typeof key === 'bigint' && key >= 0n && key < BigInt(current.length))
      current = current[Number(key)];
    else return ABSENT;
  }
  return current;
}

/** Short text of a value for a failure reason: `412`, `"DOWN"`, `{"a": 1}`, `(absent)`. */
export function showValue(value: unknown, max = 80): string {
  const text = value === ABSENT ? '(absent)' : render(value, 0);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function render(value: unknown, depth: number): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return literal(value);
  if (value === undefined) return '(absent)';
  if (value === null || typeof value !== 'object') return String(value);
  if (depth > 3) return '…';
  if (Array.isArray(value))
    return `[${value
      .slice(0, 8)
      .map((v) => render(v, depth + 1))
      .join(', ')}${value.length > 8 ? ', …' : ''}]`;
  if (value instanceof Map) {
    const entries = [...value.entries()]
      .slice(0, 8)
      .map(([k, v]) => `${render(k, depth + 1)}: ${render(v, depth + 1)}`);
    return `{${entries.join(', ')}${value.size > 8 ? ', …' : ''}}`;
  }
  return Object.prototype.toString.call(value);
}

function literal(value: string | bigint): string {
  return typeof value === 'bigint' ? value.toString() : JSON.stringify(value);
}
