// Reads the Prometheus text exposition format 0.0.4 (what /metrics endpoints serve) into
// samples for `metric("name", {labels})` conditions. A scrape is someone else's output:
// a bad line is skipped and counted rather than failing the whole scrape, and sizes are
// bounded so a runaway endpoint cannot take the collector's memory.

export interface PrometheusSample {
  name: string;
  /** Label names to values. Null-prototype: `__proto__` is a legal label name. */
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch, when the line carries one. */
  timestampMs?: number;
}

export interface PrometheusParseError {
  /** 1-based line number. */
  line: number;
  message: string;
}

export interface PrometheusParseResult {
  samples: PrometheusSample[];
  /** The first few bad lines (at most `MAX_REPORTED_ERRORS`), for a failure reason. */
  errors: PrometheusParseError[];
  /** How many lines were skipped as malformed, all of them. */
  skipped: number;
  /** Set when a limit cut the scrape short: the samples are a prefix of it. */
  truncated?: 'maxBytes' | 'maxSamples';
}

export interface PrometheusLimits {
  maxSamples: number;
  /** Characters of text read (a UTF-8 byte count is never smaller, so this bounds bytes too). */
  maxBytes: number;
}

export const DEFAULT_PROMETHEUS_LIMITS: PrometheusLimits = { maxSamples: 50_000, maxBytes: 8 * 1024 * 1024 };
export const MAX_REPORTED_ERRORS = 20;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// Go's strconv.ParseFloat, which Prometheus uses, minus hex floats and underscores.
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const SPECIAL = new Map<string, number>([
  ['nan', NaN],
  ['inf', Infinity],
  ['+inf', Infinity],
  ['-inf', -Infinity],
  ['infinity', Infinity],
  ['+infinity', Infinity],
  ['-infinity', -Infinity],
]);

class LineError extends Error {}

export function parsePrometheusText(
  text: string,
  limits: PrometheusLimits = DEFAULT_PROMETHEUS_LIMITS,
): PrometheusParseResult {
  const result: PrometheusParseResult = { samples: [], errors: [], skipped: 0 };
  let end = text.length;
  if (end > limits.maxBytes) {
    // Cut at the last whole line within the limit.
    end = text.lastIndexOf('\n', limits.maxBytes - 1) + 1;
    result.truncated = 'maxBytes';
  }
  let lineNo = 0;
  for (let start = 0; start < end;) {
    let stop = text.indexOf('\n', start);
    if (stop < 0 || stop > end) stop = end;
    lineNo++;
    const line = text.charCodeAt(stop - 1) === 13 ? text.slice(start, stop - 1) : text.slice(start, stop);
    start = stop + 1;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.charCodeAt(0) === 35 /* # */) continue;
    if (result.samples.length >= limits.maxSamples) {
      result.truncated = 'maxSamples';
      break;
    }
    try {
      result.samples.push(parseSample(trimmed));
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      result.skipped++;
      if (result.errors.length < MAX_REPORTED_ERRORS) result.errors.push({ line: lineNo, message: e.message });
    }
  }
  return result;
}

function parseSample(line: string): PrometheusSample {
  let i = 0;
  while (i < line.length && !isSpace(line.charCodeAt(i)) && line.charCodeAt(i) !== 123 /* { */) i++;
  const name = line.slice(0, i);
  if (!METRIC_NAME.test(name)) throw new LineError(`not a metric name: "${name.slice(0, 80)}"`);
  const labels: Record<string, string> = Object.create(null) as Record<string, string>;
  i = skipSpaces(line, i);
  if (line.charCodeAt(i) === 123) i = parseLabels(line, i + 1, labels);
  // The value and an optional timestamp, separated by blanks (the line is already trimmed).
  i = skipSpaces(line, i);
  const valueEnd = tokenEnd(line, i);
  if (valueEnd === i) throw new LineError(`${name}: no value`);
  const valueText = line.slice(i, valueEnd);
  const value = parseValue(valueText);
  if (value === null) throw new LineError(`${name}: not a number: "${valueText.slice(0, 40)}"`);
  const sample: PrometheusSample = { name, labels, value };
  i = skipSpaces(line, valueEnd);
  if (i < line.length) {
    const stampEnd = tokenEnd(line, i);
    const stamp = line.slice(i, stampEnd);
    const after = skipSpaces(line, stampEnd);
    if (after < line.length)
      throw new LineError(
        `${name}: unexpected "${line.slice(after, tokenEnd(line, after)).slice(0, 40)}" after the value`,
      );
    if (!/^-?\d{1,16}$/.test(stamp)) throw new LineError(`${name}: not a timestamp: "${stamp.slice(0, 40)}"`);
    sample.timestampMs = Number(stamp);
  }
  return sample;
}

/** Reads `name="value", …}` from `i` (just after `{`); returns the index after `}`. */
function parseLabels(line: string, i: number, labels: Record<string, string>): number {
  for (;;) {
    i = skipSpaces(line, i);
    if (line.charCodeAt(i) === 125 /* } */) return i + 1;
    const eq = line.indexOf('=', i);
    if (eq < 0) throw new LineError('unterminated label set');
    const labelName = line.slice(i, eq).trim();
    if (!LABEL_NAME.test(labelName)) throw new LineError(`not a label name: "${labelName.slice(0, 80)}"`);
    if (Object.hasOwn(labels, labelName)) throw new LineError(`label "${labelName}" given twice`);
    i = skipSpaces(line, eq + 1);
    if (line.charCodeAt(i) !== 34 /* " */) throw new LineError(`label "${labelName}": value must be quoted`);
    let value = '';
    let from = ++i;
    for (;;) {
      if (i >= line.length) throw new LineError(`label "${labelName}": unterminated value`);
      const c = line.charCodeAt(i);
      if (c === 34) break;
      if (c === 92 /* \ */) {
        const next = line[i + 1];
        // The format defines \\, \" and \n; Prometheus keeps any other backslash as is.
        const decoded = next === 'n' ? '\n' : next === '\\' || next === '"' ? next : null;
        if (decoded !== null) {
          value += line.slice(from, i) + decoded;
          i += 2;
          from = i;
          continue;
        }
      }
      i++;
    }
    labels[labelName] = value + line.slice(from, i);
    i = skipSpaces(line, i + 1);
    const c = line.charCodeAt(i);
    if (c === 44 /* , */) i++;
    else if (c !== 125) throw new LineError(`label "${labelName}": expected , or } after the value`);
  }
}

function parseValue(text: string): number | null {
  if (FLOAT.test(text)) return Number(text);
  return SPECIAL.get(text.toLowerCase()) ?? null;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

function tokenEnd(line: string, i: number): number {
  while (i < line.length && !isSpace(line.charCodeAt(i))) i++;
  return i;
}

function skipSpaces(line: string, i: number): number {
  while (i < line.length && isSpace(line.charCodeAt(i))) i++;
  return i;
}
