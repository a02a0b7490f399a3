import { FORBIDDEN_KEYS } from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses a request body as strict JSON: UTF-8 only (invalid bytes are refused,
 * not replaced), and no `__proto__` / `constructor` / `prototype` keys anywhere,
 * named by path. Throws InvalidError (400) naming the problem.
 */
export function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0)
    throw new InvalidError('body is empty: send a JSON document', [{ path: '(body)', message: 'is empty' }]);
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    const at = firstInvalidUtf8Offset(raw);
    throw new InvalidError(`body is not valid UTF-8 (invalid byte at offset ${at})`, [
      { path: '(body)', message: `invalid UTF-8 at byte ${at}` },
    ]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    throw new InvalidError(`body is not valid JSON: ${message}`, [
      { path: '(body)', message: `not valid JSON: ${message}` },
    ]);
  }
  // JSON.parse makes `"__proto__"` an own key; later copies would turn it into a prototype. Refuse it here.
  if (mayHoldForbiddenKey(text)) {
    const path = forbiddenKeyPath(value);
    if (path !== null) {
      const key = path[path.length - 1];
      throw new InvalidError(`${path.join('.')}: key "${key}" is not allowed`, [
        { path: path.join('.'), message: `key "${key}" is not allowed` },
      ]);
    }
  }
  return value;
}

function mayHoldForbiddenKey(text: string): boolean {
  // Escapes (`\u005f_proto__`) can spell a key too: scan when any escape is present.
  return (
    text.includes('__proto__') || text.includes('constructor') || text.includes('prototype') || text.includes('\\u')
  );
}

interface Frame {
  value: unknown;
  key: string;
  parent: Frame | null;
}

/**
 * Path of the first forbidden key, or null. Iterative (deep nesting cannot
 * overflow the stack) and linear: frames point at their parent, and the path is
 * built only for the key that is found.
 */
export function forbiddenKeyPath(value: unknown): string[] | null {
  const stack: Frame[] = [{ value, key: '', parent: null }];
  while (stack.length) {
    const frame = stack.pop() as Frame;
    const v = frame.value;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--)
        if (v[i] !== null && typeof v[i] === 'object') stack.push({ value: v[i], key: String(i), parent: frame });
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      for (const k of keys) if (FORBIDDEN_KEYS.has(k)) return pathOf({ value: null, key: k, parent: frame });
      for (let i = keys.length - 1; i >= 0; i--) {
        const child = (v as Record<string, unknown>)[keys[i]];
        if (child !== null && typeof child === 'object') stack.push({ value: child, key: keys[i], parent: frame });
      }
    }
  }
  return null;
}

function pathOf(frame: Frame): string[] {
  const path: string[] = [];
  for (let f: Frame | null = frame; f && f.parent; f = f.parent) path.push(f.key);
  return path.reverse();
}

function firstInvalidUtf8Offset(raw: Buffer): number {
  let lo = 0;
  let hi = raw.length;
  // Binary search on the longest valid prefix (the decoder is fatal on the first bad sequence).
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (validUtf8Prefix(raw.subarray(0, mid))) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function validUtf8Prefix(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}
