// Pieces the alerting forms share: text ↔ lists and label maps, local date-time inputs ↔ ISO
// instants, and the API's (or the shared contract's) issue paths → the form's fields.

export type Errors<F extends string> = Partial<Record<F | 'form', string>>;

/** "a, b ,c" → ["a", "b", "c"] (blanks dropped). */
export const splitList = (s: string): string[] =>
  s
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

export const joinList = (a: readonly string[] | undefined): string => (a ?? []).join(', ');

/**
 * One `name=value` per line → a map (split at the first `=`, so a value may hold more). A line
 * without `=` becomes a name with an empty value (the form refuses it first: pairProblem).
 */
export function parsePairs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf('=');
    if (at < 0) out[line] = '';
    else out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

/**
 * Which lines of a `name=value` field hold no `=`, as a message (undefined: none). The contract takes an empty value,
 * so `team ops` (a typo for `team=ops`) was saved as a label `team ops` with no value, without a word.
 */
export function pairProblem(text: string): string | undefined {
  const lines = text
    .split('\n')
    .map((raw, i) => ({ line: raw.trim(), n: i + 1 }))
    .filter((l) => l.line !== '' && !l.line.includes('='))
    .map((l) => l.n);
  if (lines.length === 0) return undefined;
  return `${lines.length === 1 ? 'line' : 'lines'} ${lines.join(', ')}: write one name=value per line`;
}

export const formatPairs = (m: Readonly<Record<string, string>> | undefined): string =>
  Object.entries(m ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');

export { fromLocalInput, toLocalInput } from '../../local-time';

/**
 * Issues (`condition.threshold: …`) → messages per field. `route` names the field of a path (or
 * null: the form); the rest of the path is kept in the message when it says which entry is meant.
 */
export function errorsFrom<F extends string>(
  issues: readonly { path: string; message: string }[],
  route: (segments: string[]) => { field: F | 'form'; prefix?: string },
): Errors<F> {
  const out: Errors<F> = {};
  for (const issue of issues) {
    const segments = issue.path ? issue.path.split('.') : [];
    const { field, prefix } = route(segments);
    let message = prefix ? `${prefix}: ${issue.message}` : issue.message;
    if (field === 'form' && issue.path && !prefix) message = `${issue.path}: ${issue.message}`;
    out[field] = out[field] ? `${out[field]}; ${message}` : message;
  }
  return out;
}

/** A zod error's issues in the API's form (`path` dotted). */
export const zodIssues = (issues: readonly { path: readonly PropertyKey[]; message: string }[]) =>
  issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
