import type { CheckSpec } from '@fleetwatch/contracts';
import { InvalidError, type ErrorIssue } from '@fleetwatch/domain';
import {
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  parseDocument,
  Parser,
  stringify,
  visit,
  type Alias,
  type Document,
  type Node,
} from 'yaml';
import { ALERT_AREAS } from '../alerting/alert-forms';
import { alertSectionsToRender, parseAlertSections, type AlertSections } from '../alerting/alert-yaml';
import {
  parseStatusPagesSection,
  STATUS_PAGES_SECTION,
  type StatusPageSection,
} from '../status-pages/status-page-yaml';
import {
  parsePropertiesSection,
  PROPERTIES_SECTION,
  propertiesToRender,
  type PropertySection,
} from '../properties/property-yaml';
import { parseCheck } from './check-form';
import { takeSecretMarks, type SecretHeaderMarks } from './check-secrets';

// Config as code (issue 15): the whole configuration as one YAML document,
//
//   checks:
//     <name>:          # the unique key of a check
//       type: http
//       url: https://…
//
// each check in its config form (check-form.ts: defaults left out, canonical field order),
// checks sorted by name — so an export is deterministic and importing it changes nothing.
// Alert rules, channels and maintenance windows follow in sections of their own, keyed by id
// (alerting/alert-yaml.ts), then properties by key (properties/property-yaml.ts); every section
// is written, an empty one as `{}` (a section left out of a file leaves its area as it is, so an
// export that left empty ones out could not delete, on import with prune, what was added since).

/**
 * The snapshot a config version stores and hashes: checks by name, each in config form without
 * `name`; alert rules, channels (public fields only) and maintenance windows by id, each in config
 * form without `id` — those three only when they hold something.
 */
export interface ConfigSnapshot {
  checks: Record<string, Record<string, unknown>>;
  alertRules?: Record<string, Record<string, unknown>>;
  channels?: Record<string, Record<string, unknown>>;
  maintenanceWindows?: Record<string, Record<string, unknown>>;
  /** Properties by key, each `{value}` (properties/property-forms.ts). */
  properties?: Record<string, Record<string, unknown>>;
}

const SECTIONS = [...ALERT_AREAS, PROPERTIES_SECTION, STATUS_PAGES_SECTION];
const TOP_LEVEL_KEYS = new Set<string>(['checks', ...SECTIONS]);

/**
 * YAML of a snapshot; `header` becomes a leading comment. `statusPages` (slug → form, not part of
 * snapshots: status-page-yaml.ts) is written last when given, `{}` when empty.
 */
export function renderConfigYaml(
  snapshot: ConfigSnapshot,
  header?: string,
  statusPages?: Map<string, unknown>,
): string {
  const names = Object.keys(snapshot.checks).sort();
  const properties = propertiesToRender(snapshot.properties);
  // A Map, not an object: a check may be called `__proto__`.
  const checks = new Map(names.map((n) => [n, snapshot.checks[n]]));
  // lineWidth 0: no folded lines, every string reads back exactly as written.
  const sections = {
    checks,
    ...alertSectionsToRender(snapshot),
    [PROPERTIES_SECTION]: properties,
    // Status pages are not part of snapshots: written whenever the caller has them (an export), none as `{}`.
    ...(statusPages ? { [STATUS_PAGES_SECTION]: statusPages } : {}),
  };
  const body = stringify(sections, { lineWidth: 0, minContentWidth: 0 });
  const comment = header
    ? header
        .split('\n')
        .map((l) => `# ${l}`.trimEnd())
        .join('\n') + '\n'
    : '';
  return comment + body;
}

export interface ImportedCheck {
  name: string;
  /** Validated; an http check's credential headers given as values only (the rest: `marks`). */
  spec: CheckSpec;
  /** Credential headers written as `{set: true}` (keep the stored value) or `null` (remove it): check-secrets.ts. */
  marks: SecretHeaderMarks;
}

/**
 * How deep a document may nest, by the three ways YAML nests: flow collections (`[…]`, `{…}`), compact block
 * collections on one line (`- - - x`, `? ? x`: a level every two bytes) and indentation (a level a column at least).
 * No section comes near these (a property value is at most 32 levels). Past them the parser recursed level by level —
 * a million levels of either compact kind fit in 2 MB, and the 16 MiB body limit allows eight — to end in a stack
 * overflow after seconds of CPU, sync-orchestrator's event loop blocked meanwhile; 4,000 levels of indentation
 * overflowed the stack too.
 */
export const YAML_NESTING_LIMITS = { flowLevels: 64, compactLevelsPerLine: 64, indentColumns: 256 } as const;

/**
 * What nests past YAML_NESTING_LIMITS, or null, by the YAML lexer's own tokens (indicators are tokens of their own;
 * quoted and block scalars and comments come whole, so what they hold is text), stopping at the first excess. The
 * lexer is iterative and linear: about a sixth of what parsing the same text costs.
 */
function nestingProblem(text: string): string | null {
  const { flowLevels, compactLevelsPerLine, indentColumns } = YAML_NESTING_LIMITS;
  let flow = 0;
  let compact = 0;
  let lineStart = true;
  for (const token of new Lexer().lex(text)) {
    if (lineStart && token.length > indentColumns && /^[ \t]+$/.test(token))
      return `a line indented past ${indentColumns} columns`;
    lineStart = token === '\n' || (token.length > 0 && token.charCodeAt(0) === 0x02); // a newline, a document start
    if (lineStart) compact = 0;
    else if (token === '[' || token === '{') {
      if (++flow > flowLevels) return `flow collections ([…] or {…}) nested deeper than ${flowLevels} levels`;
    } else if ((token === ']' || token === '}') && flow > 0) flow--;
    else if ((token === '-' || token === '?') && flow === 0 && ++compact > compactLevelsPerLine)
      return `more than ${compactLevelsPerLine} collections opened on one line (- or ?)`;
  }
  return null;
}

/**
 * Every key that repeats an earlier key of its mapping, in one pass per mapping, and every key that is not a scalar.
 * Scalar keys are compared as the JS object they are read into names them (`String(value)`, `~` as ""): `1` and `"1"`,
 * or `true` and `"true"`, are two keys to the yaml package's `uniqueKeys` but one property once read, so one value was
 * dropped without a word (an accepted document not stored as sent). An alias key is the key it names. A sequence or
 * mapping key (`? [a, b]`, `? {k: v}`, or an alias of one) has no place in JSON: it was read as its YAML text
 * (`"[ a, b ]"`), never compared, so it was stored as a key nobody wrote or silently replaced the one spelled so.
 */
function keyProblems(doc: Document): Array<{ offset: number | undefined; message: string }> {
  const out: Array<{ offset: number | undefined; message: string }> = [];
  const targets = aliasTargets(doc);
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const written = pair.key;
        const key = isAlias(written) ? targets.get(written) : written;
        const offset = isNode(written) ? written.range?.[0] : undefined;
        if (isMap(key) || isSeq(key)) {
          const what = `${isAlias(written) ? 'an alias of ' : ''}a ${isMap(key) ? 'mapping' : 'sequence'}`;
          out.push({ offset, message: `a key must be a scalar (a string, number, boolean or null), not ${what}` });
          continue;
        }
        if (!isScalar(key)) continue; // an empty key: a null scalar; an unknown alias is a parse error
        const value = key.value;
        if (typeof value === 'symbol') continue; // a YAML 1.1 merge key `<<`: each one merges, none is dropped
        const name = value === null || value === undefined ? '' : String(value);
        if (seen.has(name)) out.push({ offset, message: 'Map keys must be unique' });
        seen.add(name);
      }
    },
  });
  return out.sort((a, b) => (a.offset ?? 0) - (b.offset ?? 0)); // in document order
}

/**
 * What each alias names, as Alias#resolve finds it (the last node anchored so before it), for every alias in one pass:
 * resolve(doc) walks the whole document at each call — 5,000 alias keys (140 KB) held the event loop for 25 s.
 */
function aliasTargets(doc: Document): Map<Alias, Node | undefined> {
  const anchored = new Map<string, Node>();
  const out = new Map<Alias, Node | undefined>();
  visit(doc, {
    Node(_, node) {
      if (isAlias(node)) out.set(node, anchored.get(node.source));
      else if (node.anchor) anchored.set(node.anchor, node);
    },
  });
  return out;
}

/** The tags of YAML 1.2's core schema: what JSON can hold, so what every section's schema reads. */
const CORE_TAGS = new Set(['map', 'seq', 'str', 'int', 'float', 'bool', 'null'].map((t) => `tag:yaml.org,2002:${t}`));

/** Every tag token of the text, as written (`!foo`, `!!foo`, `!e!foo`, `!<…>`), by its offset: the CST keeps them. */
function writtenTags(text: string): Map<number, string> {
  const out = new Map<number, string>();
  const stack: unknown[] = [...new Parser().parse(text)];
  while (stack.length > 0) {
    const token = stack.pop();
    if (token === null || typeof token !== 'object') continue;
    const t = token as { type?: unknown; offset?: unknown; source?: unknown };
    if (t.type === 'tag' && typeof t.offset === 'number' && typeof t.source === 'string') out.set(t.offset, t.source);
    else for (const v of Object.values(token)) if (v !== null && typeof v === 'object') stack.push(v);
  }
  return out;
}

/**
 * Every tag not one of the core schema's, named as written, at the tag. The yaml package resolves `!!omap`, `!!set`,
 * `!!pairs`, `!!binary` and `!!timestamp` even in the core schema, to a JS Map, Set, Buffer or Date: a Map or Set has
 * no fields of its own, so `selector: !!omap [tags: [db]]` was read as an empty selector (every target) and stored —
 * accepted, but not what was sent. A tag it cannot resolve (`!!js/function`, `!custom`, `!!float 80`) is read as a
 * string with a warning naming the tag's URI (`tag:yaml.org,2002:foo`), which nobody wrote. Both are refused.
 */
function tagProblems(doc: Document, text: string): Array<{ offset: number | undefined; message: string }> {
  const out: Array<{ offset: number | undefined; message: string }> = [];
  const allowed = (tag: string | null | undefined) => !tag || tag === '!' || CORE_TAGS.has(tag);
  let tagged = false;
  visit(doc, (_key, node) => {
    // A %YAML 1.1 document reads an unquoted date as a timestamp (a JS Date, no tag written): as a key it became the
    // server's Date#toString.
    if (isScalar(node) && !node.tag && node.value instanceof Date)
      out.push({ offset: node.range?.[0], message: 'a YAML 1.1 timestamp is not allowed: quote it' });
    if (isNode(node) && !allowed(node.tag)) tagged = true;
  });
  const unresolved = doc.warnings.filter((w) => w.code === 'TAG_RESOLVE_FAILED');
  if (!tagged && unresolved.length === 0) return out; // the usual case: no second pass over the text
  const notAllowed = 'is not allowed: only the YAML 1.2 core tags (what JSON holds)';
  const written = writtenTags(text);
  // An unknown handle (`!x!a`) is a parse error already: none gets here.
  const uriOf = (source: string) => doc.directives?.tagName(source, () => undefined);
  for (const [offset, source] of written)
    if (!allowed(uriOf(source))) out.push({ offset, message: `the tag ${source} ${notAllowed}` });
  // A core tag its value does not fit (`!!float 80`, `!!int x`): the warning is at the tag.
  for (const w of unresolved) {
    const source = written.get(w.pos[0]);
    if (source === undefined) out.push({ offset: w.pos[0], message: w.message.split('\n')[0] });
    else if (allowed(uriOf(source)))
      out.push({ offset: w.pos[0], message: `the tag ${source} does not fit its value` });
  }
  return out.sort((a, b) => (a.offset ?? 0) - (b.offset ?? 0));
}

/**
 * Reads a config-as-code document: YAML errors with their line and column, then every
 * check validated by the contract, issues pathed `checks.<name>.<field>` and placed by
 * line. Any problem refuses the whole document (InvalidError listing every issue).
 */
export function parseConfigYaml(text: string): ImportedCheck[] {
  return parseConfigDocument(text).checks;
}

/** The whole document: its checks and the alert, property and status page sections it has (absent: leave that area as it is). */
export function parseConfigDocument(text: string): {
  checks: ImportedCheck[];
  alert: AlertSections;
  properties?: PropertySection;
  statusPages?: StatusPageSection;
} {
  const nesting = nestingProblem(text);
  if (nesting !== null) throw new InvalidError(`not valid YAML: ${nesting}`, [{ path: '', message: nesting }]);
  const lines = new LineCounter();
  // Duplicate keys are found by keyProblems (linear): the yaml package's own check (uniqueKeys) compares each key
  // with every earlier one of its map — 30,000 checks held sync-orchestrator's event loop for 17 s a document, long
  // enough to lose its broker connection and have the import redelivered (any viewer may ask for a dry run).
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false, strict: true });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return '';
    const p = lines.linePos(offset);
    return `line ${p.line}, column ${p.col}: `;
  };
  const errors = [
    ...doc.errors.map((e) => ({ offset: e.pos[0], message: e.message.split('\n')[0] })),
    ...(doc.errors.length === 0 ? keyProblems(doc) : []),
    ...(doc.errors.length === 0 ? tagProblems(doc, text) : []),
  ];
  if (errors.length > 0) {
    const issues = errors.map((e) => ({ path: '', message: `${at(e.offset)}${e.message}` }));
    throw new InvalidError(`not valid YAML: ${issues[0].message}`, issues.slice(0, 50));
  }
  const root = doc.contents;
  if (!isMap(root)) throw new InvalidError('the document must be a mapping with a `checks:` section', []);
  const issues: ErrorIssue[] = [];
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? pair.key.value : pair.key;
    if (typeof key !== 'string' || !TOP_LEVEL_KEYS.has(key))
      issues.push({
        path: String(key),
        message: `${at(isScalar(pair.key) ? pair.key.range?.[0] : undefined)}unknown section (expected: checks, ${SECTIONS.join(', ')})`,
      });
  }
  const section = doc.get('checks', true);
  if (section === undefined)
    issues.push({ path: 'checks', message: 'missing: the document needs a `checks:` section' });
  const checks: ImportedCheck[] = [];
  if (isMap(section)) {
    const seen = new Map<string, string>();
    for (const pair of section.items) {
      const keyNode = isScalar(pair.key) ? pair.key : null;
      const where = at(keyNode?.range?.[0]);
      const name = keyNode?.value;
      if (typeof name !== 'string') {
        issues.push({
          path: `checks.${String(name)}`,
          message: `${where}a check's key is its name, a string (quote it)`,
        });
        continue;
      }
      let value: unknown;
      try {
        value = pair.value ? (pair.value as { toJS(d: unknown): unknown }).toJS(doc) : null;
      } catch (e) {
        // The yaml package refuses alias bombs ("Excessive alias count") and bad aliases by throwing here.
        issues.push({ path: `checks.${name}`, message: `${where}${(e as Error).message.split('\n')[0]}` });
        continue;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        issues.push({ path: `checks.${name}`, message: `${where}a check is a mapping of its fields` });
        continue;
      }
      const fields = value as Record<string, unknown>;
      if ('name' in fields && fields['name'] !== name) {
        issues.push({ path: `checks.${name}.name`, message: `${where}the name is the key: leave \`name\` out` });
        continue;
      }
      // A credential header exported as `{set: true}` keeps the stored value: resolved against the site's (import).
      const { input, marks } = takeSecretMarks({ ...fields, name });
      const parsed = parseCheck(input, ['checks', name]);
      if (!parsed.ok) {
        for (const i of parsed.issues) issues.push({ path: i.path, message: `${where}${i.message}` });
        continue;
      }
      // The schema trims names: `web` and `web ` would be one check.
      const twin = seen.get(parsed.spec.name);
      if (twin !== undefined) {
        issues.push({ path: `checks.${name}`, message: `${where}same name as "${twin}" once trimmed` });
        continue;
      }
      seen.set(parsed.spec.name, name);
      checks.push({ name: parsed.spec.name, spec: parsed.spec, marks });
    }
  } else if (section !== undefined && !(isScalar(section) && section.value === null)) {
    const offset = (section as { range?: [number, number, number] } | null)?.range?.[0];
    issues.push({ path: 'checks', message: `${at(offset)}must be a mapping of check names to checks` });
  }
  const alert = parseAlertSections(doc, at, issues);
  const properties = parsePropertiesSection(doc, at, issues);
  const statusPages = parseStatusPagesSection(doc, at, issues);
  if (issues.length > 0)
    throw new InvalidError(
      `${issues.length} problem${issues.length === 1 ? '' : 's'} in the configuration: ${issues[0].path ? `${issues[0].path}: ` : ''}${issues[0].message}`,
      issues.slice(0, 200),
    );
  return {
    checks,
    alert,
    ...(properties ? { properties } : {}),
    ...(statusPages ? { statusPages } : {}),
  };
}
