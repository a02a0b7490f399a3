import { checkInputSchema, isKeptSecret, type CheckView } from '@fleetwatch/contracts';
import { parseHeaderLines } from '../../header-lines';

// The check form's state and its translation to the shared contract. Validation is the
// contract's own (`checkInputSchema`, the same the configuration owner applies), so the
// form shows the very messages the API would answer with; the API's `issues` (a target
// the policy refuses, a condition that does not compile) land on the same fields.
//
// An http check's credential headers (Authorization, Cookie, X-Api-Key, …) are write-only, as
// a channel's secrets: the API answers `{set: true}` in place of each value. The form shows
// them as set and not shown, sends `{set: true}` back for each one kept (the stored value
// stays), a value typed to replace one, and `null` for one the person asked to remove.

/** Types the form edits field by field; others keep their own fields as they are (config as code edits them). */
export const FORM_TYPES = ['http', 'tcp', 'icmp', 'dns'] as const;
export type FormType = (typeof FORM_TYPES)[number];

export interface CheckDraft {
  type: string;
  name: string;
  description: string;
  url: string;
  method: string;
  host: string;
  port: string;
  query: string;
  intervalSeconds: string;
  timeoutSeconds: string;
  retries: string;
  /** Comma-separated. */
  tags: string;
  locations: string;
  /** One CEL expression per line. */
  conditions: string;
  /** http: `Name: value` per line (a credential header typed here is stored write-only). */
  headers: string;
  /** http: credential headers stored (values never shown), by name as stored. */
  storedSecrets: string[];
  /** A value typed to replace a stored credential header (empty: keep it). */
  secretValues: Record<string, string>;
  /** Stored credential headers to remove. */
  removeSecrets: Record<string, boolean>;
  paused: boolean;
  /** Fields of the stored check the form does not show, sent back unchanged. */
  extra: Record<string, unknown>;
}

export type FieldErrors = Partial<
  Record<Exclude<keyof CheckDraft, 'storedSecrets' | 'secretValues' | 'removeSecrets'> | 'form', string>
>;

export const NEW_DRAFT: CheckDraft = {
  type: 'http',
  name: '',
  description: '',
  url: 'https://',
  method: 'GET',
  host: '',
  port: '',
  query: '',
  intervalSeconds: '30',
  timeoutSeconds: '10',
  retries: '0',
  tags: '',
  locations: '',
  conditions: '',
  headers: '',
  storedSecrets: [],
  secretValues: {},
  removeSecrets: {},
  paused: false,
  extra: {},
};

const SHOWN = new Set(['type', 'name', 'description', 'url', 'method', 'headers', 'host', 'port', 'query']);
const COMMON = ['intervalSeconds', 'timeoutSeconds', 'retries', 'tags', 'locations', 'conditions', 'paused'];
const READ_ONLY = new Set(['id', 'targetId', 'version', 'createdAt', 'updatedAt']);

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));

/**
 * A condition on one line (the form holds one per line): one written over several lines (a YAML block scalar) was
 * cut into pieces at each line break when saved again — every save a 400. CEL reads a line break as a space, except
 * inside a triple-quoted string, which is left as written.
 */
export function oneLine(condition: string): string {
  if (condition.includes("'''") || condition.includes('"""')) return condition;
  return condition.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** How often a check is due, as the list shows it: a heartbeat every period with its grace (its interval is unused). */
export function scheduleText(c: CheckView): string {
  return c.type === 'push' ? `${c.periodSeconds} s + ${c.graceSeconds} s grace` : `${c.intervalSeconds} s`;
}

export function draftFromCheck(c: CheckView): CheckDraft {
  const record = c as unknown as Record<string, unknown>;
  const extra: Record<string, unknown> = {};
  // A type the form does not show keeps every field of its own (host, port, url …) as stored.
  const own = (FORM_TYPES as readonly string[]).includes(c.type) ? SHOWN : new Set(['type', 'name', 'description']);
  for (const [k, v] of Object.entries(record))
    if (!own.has(k) && !COMMON.includes(k) && !READ_ONLY.has(k)) extra[k] = v;
  const headers = c.type === 'http' ? Object.entries(c.headers ?? {}) : [];
  return {
    type: c.type,
    name: c.name,
    description: str(record['description']),
    url: str(record['url']),
    method: str(record['method']) || 'GET',
    host: str(record['host']),
    port: str(record['port']),
    query: str(record['query']),
    intervalSeconds: String(c.intervalSeconds),
    timeoutSeconds: String(c.timeoutSeconds),
    retries: String(c.retries),
    tags: c.tags.join(', '),
    locations: c.locations.join(', '),
    conditions: c.conditions.map(oneLine).join('\n'),
    headers: headers
      .filter((e): e is [string, string] => typeof e[1] === 'string')
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n'),
    storedSecrets: headers.filter(([, v]) => isKeptSecret(v)).map(([k]) => k),
    secretValues: {},
    removeSecrets: {},
    paused: c.paused,
    extra,
  };
}

/**
 * An http check's `headers` for the API: the lines typed, and each stored credential header as the person left it —
 * kept (`{set: true}`: the stored value stays), replaced (the value typed) or removed (`null`). A line typed for the
 * same name (any spelling) is that header's new value.
 */
export function headersOf(d: CheckDraft): Record<string, string | { set: true } | null> {
  const out: Record<string, string | { set: true } | null> = parseHeaderLines(d.headers);
  const typed = new Set(Object.keys(out).map((n) => n.toLowerCase()));
  for (const name of d.storedSecrets) {
    if (typed.has(name.toLowerCase())) continue;
    const value = (d.secretValues[name] ?? '').trim();
    out[name] = d.removeSecrets[name] ? null : value ? value : { set: true };
  }
  return out;
}

const list = (s: string) =>
  s
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

/** A number when the text is one; else the text itself, so that the contract names the field. */
const num = (s: string) => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s.trim() || undefined);

/** The request body for POST / PUT /api/v1/checks. */
export function draftToInput(d: CheckDraft): Record<string, unknown> {
  const body: Record<string, unknown> = {
    ...d.extra,
    type: d.type,
    name: d.name,
    intervalSeconds: num(d.intervalSeconds),
    timeoutSeconds: num(d.timeoutSeconds),
    retries: num(d.retries),
    tags: list(d.tags),
    locations: list(d.locations),
    conditions: d.conditions
      .split('\n')
      .map((c) => c.trim())
      .filter(Boolean),
    paused: d.paused,
  };
  if (d.description.trim()) body['description'] = d.description.trim();
  if (d.type === 'http') Object.assign(body, { url: d.url.trim(), method: d.method, headers: headersOf(d) });
  if (d.type === 'tcp') Object.assign(body, { host: d.host.trim(), port: num(d.port) });
  if (d.type === 'icmp') body['host'] = d.host.trim();
  if (d.type === 'dns') body['query'] = d.query.trim();
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  return body;
}

/** `conditions.1: …` → the conditions field, naming the line; `url` → url; anything else → the form. */
export function errorsFromIssues(issues: readonly { path: string; message: string }[]): FieldErrors {
  const out: FieldErrors = {};
  const fields = new Set<string>([...SHOWN, ...COMMON]);
  for (const issue of issues) {
    const [head, index] = issue.path.split('.');
    const field = (fields.has(head) ? head : 'form') as keyof FieldErrors;
    let message = issue.message;
    if (head === 'conditions' && index !== undefined && /^\d+$/.test(index))
      message = `line ${Number(index) + 1}: ${message}`;
    // `headers.Authorization: the check now sends to …`: the header's name leads.
    if (head === 'headers' && index !== undefined) message = `${issue.path.slice('headers.'.length)}: ${message}`;
    if (field === 'form' && issue.path) message = `${issue.path}: ${message}`;
    out[field] = out[field] ? `${out[field]}; ${message}` : message;
  }
  return out;
}

/** The contract's verdict on the draft, as messages per field (empty: valid). */
export function validateDraft(d: CheckDraft): FieldErrors {
  const input = draftToInput(d);
  // A kept or removed credential header is the owner's to resolve: the contract checks the values given.
  if (d.type === 'http')
    input['headers'] = Object.fromEntries(Object.entries(headersOf(d)).filter(([, v]) => typeof v === 'string'));
  const r = checkInputSchema.safeParse(input);
  if (r.success) return {};
  return errorsFromIssues(r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
}
