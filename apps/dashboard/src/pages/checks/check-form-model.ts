import { checkInputSchema, type CheckDefinition } from '@fleetwatch/contracts';

// The check form's state and its translation to the shared contract. Validation is the
// contract's own (`checkInputSchema`, the same the configuration owner applies), so the
// form shows the very messages the API would answer with; the API's `issues` (a target
// the policy refuses, a condition that does not compile) land on the same fields.

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
  paused: boolean;
  /** Fields of the stored check the form does not show, sent back unchanged. */
  extra: Record<string, unknown>;
}

export type FieldErrors = Partial<Record<keyof CheckDraft | 'form', string>>;

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
  paused: false,
  extra: {},
};

const SHOWN = new Set(['type', 'name', 'description', 'url', 'method', 'host', 'port', 'query']);
const COMMON = ['intervalSeconds', 'timeoutSeconds', 'retries', 'tags', 'locations', 'conditions', 'paused'];
const READ_ONLY = new Set(['id', 'targetId', 'version', 'createdAt', 'updatedAt']);

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));

export function draftFromCheck(c: CheckDefinition): CheckDraft {
  const record = c as unknown as Record<string, unknown>;
  const extra: Record<string, unknown> = {};
  // A type the form does not show keeps every field of its own (host, port, url …) as stored.
  const own = (FORM_TYPES as readonly string[]).includes(c.type) ? SHOWN : new Set(['type', 'name', 'description']);
  for (const [k, v] of Object.entries(record))
    if (!own.has(k) && !COMMON.includes(k) && !READ_ONLY.has(k)) extra[k] = v;
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
    conditions: c.conditions.join('\n'),
    paused: c.paused,
    extra,
  };
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
  if (d.type === 'http') Object.assign(body, { url: d.url.trim(), method: d.method });
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
    const field: keyof FieldErrors = fields.has(head) ? (head as keyof CheckDraft) : 'form';
    let message = issue.message;
    if (head === 'conditions' && index !== undefined && /^\d+$/.test(index))
      message = `line ${Number(index) + 1}: ${message}`;
    if (field === 'form' && issue.path) message = `${issue.path}: ${message}`;
    out[field] = out[field] ? `${out[field]}; ${message}` : message;
  }
  return out;
}

/** The contract's verdict on the draft, as messages per field (empty: valid). */
export function validateDraft(d: CheckDraft): FieldErrors {
  const r = checkInputSchema.safeParse(draftToInput(d));
  if (r.success) return {};
  return errorsFromIssues(r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
}
