import fc from 'fast-check';
import { parsePrometheusText, type PrometheusSample } from './prometheus-text';

const labels = (record: Record<string, string> = {}): Record<string, string> =>
  Object.assign(Object.create(null) as Record<string, string>, record);
const sample = (name: string, l: Record<string, string>, value: number, timestampMs?: number): PrometheusSample =>
  timestampMs === undefined ? { name, labels: labels(l), value } : { name, labels: labels(l), value, timestampMs };

describe('parsePrometheusText', () => {
  it('reads a typical scrape', () => {
    const text = [
      '# HELP http_requests_total The total number of HTTP requests.',
      '# TYPE http_requests_total counter',
      'http_requests_total{method="post",code="200"} 1027 1395066363000',
      'http_requests_total{method="post",code="400"}    3 1395066363000',
      '',
      '# Escaping in label values:',
      'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9',
      '# Minimalistic line:',
      'metric_without_timestamp_and_labels 12.47',
      'something_weird{problem="division by zero"} +Inf -3982045',
      'rpc_duration_seconds{quantile="0.5"} NaN',
      'neg{ a = "x" , } -Inf',
      'colon:name:total 0x1p3',
      'up 1\r',
      '# EOF',
    ].join('\n');
    const parsed = parsePrometheusText(text);
    expect(parsed.samples).toEqual([
      sample('http_requests_total', { method: 'post', code: '200' }, 1027, 1395066363000),
      sample('http_requests_total', { method: 'post', code: '400' }, 3, 1395066363000),
      sample(
        'msdos_file_access_time_seconds',
        { path: 'C:\\DIR\\FILE.TXT', error: 'Cannot find file:\n"FILE.TXT"' },
        1458255915,
      ),
      sample('metric_without_timestamp_and_labels', {}, 12.47),
      sample('something_weird', { problem: 'division by zero' }, Infinity, -3982045),
      sample('rpc_duration_seconds', { quantile: '0.5' }, NaN),
      sample('neg', { a: 'x' }, -Infinity),
      sample('up', {}, 1),
    ]);
    // Hex floats are Go syntax Prometheus accepts but exporters do not write: skipped, counted.
    expect(parsed.skipped).toBe(1);
    expect(parsed.errors).toEqual([{ line: 13, message: 'colon:name:total: not a number: "0x1p3"' }]);
    expect(parsed.truncated).toBeUndefined();
  });

  it.each<[string, string]>([
    ['bad-name 1', 'not a metric name: "bad-name"'],
    ['9lives 1', 'not a metric name: "9lives"'],
    ['x{a=1} 2', 'label "a": value must be quoted'],
    ['x{a="1" 2', 'label "a": expected , or } after the value'],
    ['x{a="1', 'label "a": unterminated value'],
    ['x{a', 'unterminated label set'],
    ['x{1a="b"} 1', 'not a label name: "1a"'],
    ['x{a="1",a="2"} 3', 'label "a" given twice'],
    ['x', 'x: no value'],
    ['x{a="b"}', 'x: no value'],
    ['x abc', 'x: not a number: "abc"'],
    ['x 1 2 3', 'x: unexpected "3" after the value'],
    ['x 1 12.5', 'x: not a timestamp: "12.5"'],
    ['x constructor', 'x: not a number: "constructor"'],
  ])('skips and reports %j', (line, message) => {
    const parsed = parsePrometheusText(`ok 1\n${line}\nalso_ok 2\n`);
    expect(parsed.samples.map((s) => s.name)).toEqual(['ok', 'also_ok']);
    expect(parsed).toMatchObject({ skipped: 1, errors: [{ line: 2, message }] });
  });

  it('keeps __proto__ and other Object.prototype names as plain labels', () => {
    const [s] = parsePrometheusText('x{__proto__="a",constructor="b",toString="c"} 1').samples;
    expect(Object.getPrototypeOf(s.labels)).toBeNull();
    expect(Object.entries(s.labels)).toEqual([
      ['__proto__', 'a'],
      ['constructor', 'b'],
      ['toString', 'c'],
    ]);
  });

  it('keeps unknown escapes as written, as Prometheus does', () => {
    expect(parsePrometheusText('x{a="tab\\there"} 1').samples[0].labels.a).toBe('tab\\there');
  });

  it('stops at maxSamples and says so', () => {
    const text = Array.from({ length: 10 }, (_, i) => `s${i} ${i}`).join('\n');
    const parsed = parsePrometheusText(text, { maxSamples: 4, maxBytes: 1 << 20 });
    expect(parsed.samples.map((s) => s.value)).toEqual([0, 1, 2, 3]);
    expect(parsed.truncated).toBe('maxSamples');
  });

  it('stops at maxBytes on a whole line and says so', () => {
    const parsed = parsePrometheusText('aa 1\nbb 2\ncc 3\n', { maxSamples: 100, maxBytes: 12 });
    expect(parsed.samples.map((s) => s.name)).toEqual(['aa', 'bb']);
    expect(parsed).toMatchObject({ truncated: 'maxBytes', skipped: 0 });
  });

  it('reports at most 20 bad lines but counts them all', () => {
    const parsed = parsePrometheusText(Array.from({ length: 50 }, () => '!bad').join('\n'));
    expect(parsed.errors).toHaveLength(20);
    expect(parsed.skipped).toBe(50);
  });

  // What an exporter writes, per the 0.0.4 format, for any sample.
  const escape = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const render = (v: number): string =>
    Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : Object.is(v, -0) ? '-0' : String(v);
  const line = (s: PrometheusSample, pad: string): string => {
    const l = Object.entries(s.labels).map(([k, v]) => `${k}${pad}=${pad}"${escape(v)}"`);
    const set = l.length ? `{${pad}${l.join(`,${pad}`)}${pad}}` : '';
    return `${s.name}${set}${pad} ${render(s.value)}${s.timestampMs === undefined ? '' : ` ${s.timestampMs}`}`;
  };
  const labelValue = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.constantFrom('\\', '"', '\n', '\t', '\r', '}', ',', '=', ' a "b" \\n', '\\"', ''),
  );
  const arbSample = fc.record(
    {
      name: fc.stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,30}$/),
      labels: fc
        .dictionary(fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,15}$/), labelValue, {
          maxKeys: 5,
        })
        .map((d) => labels(d)),
      value: fc.double(),
      timestampMs: fc.integer({ min: -1e15, max: 1e15 }),
    },
    { requiredKeys: ['name', 'labels', 'value'] },
  );

  it('reads back any samples an exporter writes, between comments and junk lines', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(arbSample, fc.constantFrom('', ' ', '\t'), fc.constantFrom('', '# HELP x y', '{junk} 1', '-1 2')),
          {
            maxLength: 30,
          },
        ),
        (rows) => {
          const text = rows.flatMap(([s, pad, extra]) => [line(s, pad), extra]).join('\n');
          const parsed = parsePrometheusText(text);
          expect(parsed.samples).toEqual(rows.map(([s]) => s));
          expect(parsed.skipped).toBe(
            rows.filter(([, , extra]) => extra.startsWith('{') || extra.startsWith('-')).length,
          );
        },
      ),
    );
  });
});
