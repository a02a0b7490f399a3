// The JSON-path subset an http check's `jsonPath` assertions use (contracts check.schema):
// `$`, `.name`, `[0]`, `["any key"]`. No wildcards, filters or recursion: one path names
// at most one value. Keys are looked up as own properties of plain objects only, so
// `$.constructor`, `$.__proto__` or `$.items.length` never reach JS internals.

export type JsonPathSegment = { key: string } | { index: number };

const SEGMENT = /\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\["([^"]*)"\]/y;

/** The segments of `path`; throws for text outside the subset (the schema refuses it at save time). */
export function parseJsonPath(path: string): JsonPathSegment[] {
  if (!path.startsWith('$')) throw new Error(`not a JSON path (must start with $): ${path}`);
  const segments: JsonPathSegment[] = [];
  SEGMENT.lastIndex = 1;
  while (SEGMENT.lastIndex < path.length) {
    const at = SEGMENT.lastIndex;
    const m = SEGMENT.exec(path);
    if (!m) throw new Error(`not a JSON path: unexpected "${path.slice(at, at + 20)}" at ${at} in ${path}`);
    if (m[2] !== undefined) {
      const index = Number(m[2]);
      if (!Number.isSafeInteger(index)) throw new Error(`index too large in ${path}`);
      segments.push({ index });
    } else segments.push({ key: m[1] ?? m[3] });
  }
  return segments;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value at `path` in `value` (parsed JSON). Throws only for a malformed path. */
export function jsonPathGet(value: unknown, path: string): { found: boolean; value?: unknown } {
  let current = value;
  for (const segment of parseJsonPath(path)) {
    if ('index' in segment) {
      if (!Array.isArray(current) || segment.index >= current.length) return { found: false };
      current = current[segment.index] as unknown;
    } else {
      if (!isPlainObject(current) || !Object.hasOwn(current, segment.key)) return { found: false };
      current = current[segment.key];
    }
  }
  return { found: true, value: current };
}

export interface JsonPathAssertion {
  path: string;
  /** When given, the value must equal it; when absent, the path must exist. */
  equals?: string | number | boolean | null;
}

/**
 * Null when `body` satisfies the assertion, else why not, for a failure reason:
 * `$.status is "DOWN", expected "UP"`. Pass `undefined` as `body` when the response
 * was not JSON.
 */
export function jsonPathAssertionProblem(body: unknown, assertion: JsonPathAssertion): string | null {
  if (body === undefined) return `${assertion.path}: the body is not JSON`;
  let got: { found: boolean; value?: unknown };
  try {
    got = jsonPathGet(body, assertion.path);
  } catch (e) {
    return (e as Error).message;
  }
  if (!got.found) return `${assertion.path} not found in the body`;
  if (assertion.equals === undefined || got.value === assertion.equals) return null;
  return `${assertion.path} is ${shown(got.value)}, expected ${shown(assertion.equals)}`;
}

function shown(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}
