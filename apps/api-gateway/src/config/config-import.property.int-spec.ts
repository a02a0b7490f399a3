import fc from 'fast-check';
import * as testing from '@fleetwatch/testing';
import { rmSync } from 'node:fs';
import { Document, parseDocument } from 'yaml';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from '../checks/owner-process.int-helpers';
import { ADMIN_PASSWORD, type GatewayHarness, type HttpAnswer, startGateway } from '../int-spec.helpers';
import { at, placesOf } from '../key-paths.int-helpers';

// Config as code as a hostile CI pipeline writes it: an export of a site holding one of everything, with any one
// place replaced by a hostile value — a string a store cannot hold, a number past what a column holds, a YAML tag
// (!!binary, !!float .inf, !!js/function), a timestamp Postgres refuses, an alias bomb, a duplicate key — and applied.
// The answer is never a 5xx; an accepted import exports again, and that export imports with nothing to change.

jest.setTimeout(240_000);

let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
let admin: string;
let baseline = '';

beforeAll(async () => {
  // The owner's build and the gateway's start at once (neither needs the other).
  await Promise.all([
    startGateway(testing, 'cac-prop', { env: { GATEWAY_RPC_BULK_TIMEOUT_MS: '15000' } }).then((g) => (gw = g)),
    privateOwnerDist(`owner-cac-prop-${testing.testEnv().runId}`).then((d) => (dist = d)),
  ]);
  owner = await startOwnerProcess(dist, {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: gw.config.amqpUrl,
    redisUrl: gw.config.redisUrl,
    redisPrefix: `${testing.testEnv().redisPrefix}owner-cac-prop:`,
  });
  admin = await gw.login('admin', ADMIN_PASSWORD);
  const writes: Array<[string, Record<string, unknown>]> = [
    ['/api/v1/checks', { name: 'tcp', type: 'tcp', host: '127.0.0.1', port: 80, intervalSeconds: 30, tags: ['a'] }],
    [
      '/api/v1/checks',
      {
        name: 'web',
        type: 'http',
        url: 'http://127.0.0.1:8080/x',
        headers: { a: 'b' },
        jsonPath: [{ path: '$.a', equals: 1 }],
        expectedStatus: [200],
        conditions: ['latency < 300'],
      },
    ],
    ['/api/v1/checks', { name: 'push', type: 'push', periodSeconds: 60, graceSeconds: 10 }],
    [
      '/api/v1/alert-rules',
      {
        name: 'r',
        condition: { type: 'metric', metric: { kind: 'latency_p95_ms' }, op: 'above', threshold: 300 },
        for: '5m',
        labels: { team: 'x' },
        annotations: { summary: 's' },
        selector: { tags: ['a'] },
      },
    ],
    ['/api/v1/channels', { type: 'webhook', name: 'w', url: 'https://hooks.example.com/in' }],
    [
      '/api/v1/channels',
      { type: 'email', name: 'e', host: 'smtp.example.com', port: 25, from: 'a@example.com', to: ['b@example.com'] },
    ],
    [
      '/api/v1/maintenance-windows',
      {
        name: 'm',
        scope: { tags: ['db'] },
        schedule: { type: 'once', startsAt: '2026-01-01T00:00:00Z', endsAt: '2099-01-01T00:00:00Z' },
      },
    ],
    [
      '/api/v1/maintenance-windows',
      {
        name: 'n',
        scope: { tags: ['db'] },
        schedule: {
          type: 'recurring',
          cron: '0 2 * * *',
          duration: '1h',
          timezone: 'Europe/Paris',
          from: '2026-01-01T00:00:00Z',
          until: '2099-01-01T00:00:00Z',
        },
      },
    ],
    [
      '/api/v1/status-pages',
      {
        slug: 'acme',
        title: 'Acme',
        components: [{ name: 'Web', tags: ['w'] }],
        published: true,
        announcements: [{ title: 'i', body: 'b', startsAt: '2026-01-01T00:00:00Z', endsAt: '2099-01-01T00:00:00Z' }],
      },
    ],
  ];
  for (const [path, body] of writes) {
    const res = await gw.request('POST', path, { token: admin, body });
    if (res.status !== 201) throw new Error(`${path} → ${res.status} ${res.text.slice(0, 400)}`);
  }
  const put = await gw.request('PUT', '/api/v1/properties/app.p', { token: admin, body: { value: { a: [1, 'x'] } } });
  expect(put.status).toBe(201);
  baseline = (await exportYaml()).text;
});

afterAll(async () => {
  await owner?.stop();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

async function exportYaml(): Promise<HttpAnswer> {
  const res = await gw.request('GET', '/api/v1/config/export', { token: admin });
  expect(res.status).toBe(200);
  return res;
}

async function importYaml(text: string, dryRun: boolean, prune = false): Promise<HttpAnswer> {
  const res = await gw.request('POST', `/api/v1/config/import?dryRun=${dryRun}&prune=${prune}`, {
    token: admin,
    body: text,
    headers: { 'content-type': 'application/yaml' },
  });
  if (res.status >= 500)
    throw new Error(
      `import → ${res.status} ${res.text.slice(0, 400)}\n${text}\nowner:\n${owner.output().slice(-2000)}`,
    );
  return res;
}

const MAX = '9999-12-31T23:59:59.999Z';

/** Raw YAML a pipeline may write where a value goes. */
const rawYaml: fc.Arbitrary<string> = fc.constantFrom(
  '!!binary aGVsbG8=',
  '!!float .inf',
  '-.inf',
  '.nan',
  '-0',
  '-0.0',
  '0x7fffffff',
  '0x80000000',
  '0o17777777777',
  '99999999999999999999',
  '9223372036854775808',
  '1e400',
  '!!int 3.5',
  '!!str 12',
  '!!js/function "function(){}"',
  '!!set {a, b}',
  '!!omap [a: 1]',
  '!!timestamp 2026-01-01',
  '2026-01-01',
  '10000-01-01T00:00:00Z',
  '0000-01-01T00:00:00Z',
  '+275760-09-13T00:00:00.000Z',
  '2026-01-01T00:00:00+24:00',
  MAX,
  '~',
  '"\\0"',
  '"\\ud800"',
  '"a\\x00b"',
  '{__proto__: {polluted: 1}}',
  '{constructor: {prototype: 1}}',
  '[1, [2, [3]]]',
  '{a: 1, a: 2}',
  '&x [1, *x]',
  '*nowhere',
  '{? [a] : 1}',
  `"${'x'.repeat(70_000)}"`,
);

const hostile: fc.Arbitrary<unknown> = fc.oneof(
  testing.storeHostileText(10),
  fc.constantFrom('', ' ', '__proto__', 'constructor', '-0', '1e400'),
  fc.constantFrom(0, -1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, 2 ** 63, 1e21, 1e308, 5e-324, 0.5),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

function withValue(doc: Document, path: Array<string | number>, value: { raw: string } | { js: unknown }): string {
  const copy = doc.clone();
  if ('raw' in value) {
    // A placeholder, then the raw text in its place (tags, anchors and aliases as written).
    copy.setIn(path, 'ZZHOSTILEZZ');
    return copy.toString({ lineWidth: 0 }).replace('ZZHOSTILEZZ', () => value.raw);
  }
  copy.setIn(path, copy.createNode(value.js));
  return copy.toString({ lineWidth: 0 });
}

describe('config import of a hostile document: no 5xx, and what is accepted exports and re-imports unchanged', () => {
  it('any value of any kind at any place of an export', async () => {
    const doc = parseDocument(baseline);
    // A window's `createdBy` is exported but never read (alert-yaml.ts).
    const places = placesOf(doc.toJS()).filter((p) => p.length > 0 && !p.includes('createdBy'));
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...places),
        fc.oneof(
          { weight: 2, arbitrary: rawYaml.map((raw) => ({ raw })) },
          { weight: 3, arbitrary: hostile.map((js) => ({ js })) },
        ),
        async (path, value) => {
          const text = withValue(doc, path, value);
          const res = await importYaml(text, false);
          if (res.status >= 300) return;
          accepted++;
          const again = (await exportYaml()).text;
          // What was accepted at the place reads back as sent (a string trimmed at most; a default may be left out).
          const sent = at(parseDocument(text, { uniqueKeys: false }).toJS(), path);
          const stored = at(parseDocument(again).toJS(), path);
          // A whole section merges (prune=false) and a null is a field's default: both left out of the comparison.
          if (
            path.length > 1 &&
            sent !== null &&
            stored !== undefined &&
            !(typeof sent === 'string' && typeof stored === 'string' && stored === sent.trim())
          )
            expect({ path, value, stored: testing.canonicalJson(stored) }).toEqual({
              path,
              value,
              stored: testing.canonicalJson(sent),
            });
          const plan = await importYaml(again, true);
          expect({ path, value, status: plan.status }).toEqual({ path, value, status: 200 });
          const changed = (plan.body as { plan: Array<{ action: string; name: string }> }).plan.filter(
            (i) => i.action !== 'unchanged',
          );
          expect({ path, value, changed }).toEqual({ path, value, changed: [] });
          // Back to the baseline for the next case.
          const back = await importYaml(baseline, false, true);
          expect({ restore: back.status, body: back.text.slice(0, 300) }).toMatchObject({ restore: 200 });
        },
      ),
      { numRuns: Number(process.env.FW_RUNS ?? 300) },
    );
    expect(accepted).toBeGreaterThan(10);
  });

  it('any key renamed to any text: an entry, a field or a key inside a value', async () => {
    const base = parseDocument(baseline).toJS() as Record<string, unknown>;
    const places = placesOf(base).filter((p) => p.length > 1 && !p.includes('createdBy'));
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...places),
        fc.oneof(testing.storeHostileText(8), fc.constantFrom('__proto__', 'constructor', 'prototype', '', ' ', '<<')),
        async (path, key) => {
          const copy = structuredClone(base);
          const parent = at(copy, path.slice(0, -1)) as Record<string | number, unknown>;
          if (Array.isArray(parent)) return;
          const value = parent[path[path.length - 1]];
          delete parent[path[path.length - 1]];
          Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
          const text = new Document(copy).toString({ lineWidth: 0 });
          const res = await importYaml(text, false);
          if (res.status >= 300) return;
          accepted++;
          const plan = await importYaml((await exportYaml()).text, true);
          expect({ path, key, status: plan.status }).toEqual({ path, key, status: 200 });
          const changed = (plan.body as { plan: Array<{ action: string; name: string }> }).plan.filter(
            (i) => i.action !== 'unchanged',
          );
          expect({ path, key, changed }).toEqual({ path, key, changed: [] });
          const back = await importYaml(baseline, false, true);
          expect({ restore: back.status, body: back.text.slice(0, 300) }).toMatchObject({ restore: 200 });
        },
      ),
      { numRuns: Number(process.env.FW_RUNS ?? 300) },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  it('a YAML tag beyond plain JSON (!!omap, !!set, !!binary, !!timestamp, unresolved) is a 400 naming its line', async () => {
    const doc = parseDocument(baseline);
    const rule = Object.keys(doc.toJS().alertRules as object)[0];
    const window = Object.keys(doc.toJS().maintenanceWindows as object)[0];
    const cases: Array<[Array<string | number>, string]> = [
      // Read as a JS Map: no field of its own, so the rule's selector was stored empty (every target).
      [['alertRules', rule, 'selector'], '!!omap [tags: [a]]'],
      [['alertRules', rule, 'selector', 'tags'], '!!set {a, b}'],
      [['checks', 'tcp', 'host'], '!!binary aGVsbG8='],
      [['maintenanceWindows', window, 'schedule', 'endsAt'], '!!timestamp 2099-01-01'],
      [['properties', 'app.p'], '!!js/function "function(){}"'],
      [['checks', 'tcp', 'port'], '!!float 80'],
    ];
    for (const [path, raw] of cases) {
      const res = await importYaml(withValue(doc, path, { raw }), false);
      const body = res.body as { error?: { message: string } };
      expect({ path, raw, status: res.status, line: /line \d+/.test(body.error?.message ?? '') }).toEqual({
        path,
        raw,
        status: 400,
        line: true,
      });
    }
    // Nothing of it was stored.
    const uncommented = (t: string) => t.replace(/^#.*\n/gm, '');
    expect(uncommented((await exportYaml()).text)).toBe(uncommented(baseline));
  });

  it('a "__proto__" key in labels, annotations or headers of an import is a 400 naming it (zod records dropped it)', async () => {
    const doc = parseDocument(baseline);
    const js = doc.toJS() as Record<string, Record<string, Record<string, unknown>>>;
    const rule = Object.keys(js.alertRules)[0];
    const webhook = Object.keys(js.channels).find((id) => js.channels[id].type === 'webhook') as string;
    for (const path of [
      ['alertRules', rule, 'labels'],
      ['alertRules', rule, 'annotations'],
      ['checks', 'web', 'headers'],
      ['channels', webhook, 'headers'],
    ]) {
      const res = await importYaml(withValue(doc, path, { raw: '{__proto__: x}' }), false);
      const issues = (res.body as { error?: { issues?: Array<{ path: string }> } }).error?.issues ?? [];
      expect({ path, status: res.status, issues: issues.map((i) => i.path) }).toEqual({
        path,
        status: 400,
        issues: [`${path.join('.')}.__proto__`],
      });
    }
    // A JSON body with such a key never gets that far: the gateway's JSON parser refuses it, naming it as well.
    const res = await gw.request('POST', '/api/v1/alert-rules', {
      token: admin,
      body: '{"name":"p","condition":{"type":"status","statuses":["DOWN"]},"labels":{"__proto__":"x"}}',
    });
    const issues = (res.body as { error?: { issues?: Array<{ path: string }> } }).error?.issues ?? [];
    expect({ status: res.status, issues: issues.map((i) => i.path) }).toEqual({
      status: 400,
      issues: ['labels.__proto__'],
    });
  });

  it('a sequence or mapping key (or an alias of one) is a 400 at its line and column, not a key read as its text', async () => {
    // Read as "[ a, b ]" / "{ k: v }", never compared: stored, or silently replacing the key spelled so.
    const scalar = 'a key must be a scalar (a string, number, boolean or null)';
    const cases: Array<[string, string]> = [
      [
        'checks: {}\nproperties:\n  app.k:\n    ? [a, b]\n    : 1\n    "[ a, b ]": 2\n',
        `line 4, column 7: ${scalar}, not a sequence`,
      ],
      ['checks: {}\nproperties:\n  app.k: {? {k: v} : 1}\n', `line 3, column 13: ${scalar}, not a mapping`],
      [
        'checks: {}\nproperties:\n  app.m: &m {k: v}\n  app.k: {? *m : 1}\n',
        `line 4, column 13: ${scalar}, not an alias of a mapping`,
      ],
      ['checks:\n  ? [tcp]\n  : {type: tcp, host: x, port: 1}\n', `line 2, column 5: ${scalar}, not a sequence`],
    ];
    for (const [text, message] of cases) {
      const res = await importYaml(text, false);
      const error = (res.body as { error?: { issues?: Array<{ message: string }> } }).error;
      expect({ text, status: res.status, messages: error?.issues?.map((i) => i.message) }).toEqual({
        text,
        status: 400,
        messages: [message],
      });
    }
    const uncommented = (t: string) => t.replace(/^#.*\n/gm, '');
    expect(uncommented((await exportYaml()).text)).toBe(uncommented(baseline));
  });

  it('a refused tag is named as written (!foo, !!foo, !e!foo), at the tag, never by its URI', async () => {
    const notCore = 'is not allowed: only the YAML 1.2 core tags (what JSON holds)';
    const cases: Array<[string, string]> = [
      ['checks: {}\nproperties:\n  app.t: !foo 1\n', `line 3, column 10: the tag !foo ${notCore}`],
      ['checks: {}\nproperties:\n  app.t: !!foo 1\n', `line 3, column 10: the tag !!foo ${notCore}`],
      [
        '%TAG !e! tag:example.com,2000:\n---\nchecks: {}\nproperties:\n  app.t: !e!x 1\n',
        `line 5, column 10: the tag !e!x ${notCore}`,
      ],
      ['checks: {}\nproperties:\n  app.t: !!float 80\n', 'line 3, column 10: the tag !!float does not fit its value'],
    ];
    for (const [text, message] of cases) {
      const res = await importYaml(text, true);
      const error = (res.body as { error?: { issues?: Array<{ message: string }> } }).error;
      expect({ text, status: res.status, messages: error?.issues?.map((i) => i.message) }).toEqual({
        text,
        status: 400,
        messages: [message],
      });
    }
  });

  it('keys that differ only in their YAML type (1 and "1", true and "true", ~ and "") are duplicates: a 400', async () => {
    // Read into a JS object both become one key, so one value was dropped without a word.
    for (const map of ['{1: a, "1": b}', '{true: a, "true": b}', '{~: a, "": b}', '{0x10: a, "16": b}']) {
      const text = `checks: {}\nproperties:\n  app.dup: ${map}\n`;
      const res = await importYaml(text, true);
      expect({ map, status: res.status, unique: res.text.includes('Map keys must be unique') }).toEqual({
        map,
        status: 400,
        unique: true,
      });
    }
  });

  it('whole-document attacks: no 5xx, and one accepted exports and re-imports unchanged', async () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++)
      bomb.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(',')}]`,
      );
    const docs = [
      `checks: {}\nproperties:\n  app.bomb:\n    ${bomb.join('\n    ')}\n`,
      `checks: {}\nchecks: {}\n`,
      `checks: {}\n---\nchecks: {}\n`,
      `%YAML 1.1\n---\nchecks: {}\nproperties:\n  app.y: !!binary aGVsbG8=\n`,
      `%YAML 1.1\n---\nchecks: {}\nproperties:\n  app.t: 2026-01-01\n`,
      `%TAG !e! tag:example.com,2000:\n---\nchecks: {}\nproperties:\n  app.t: !e!x 1\n`,
      `<<: {checks: {}}\n`,
      `checks:\n  <<: {a: {type: tcp, host: x, port: 1}}\n`,
      `checks: {}\nproperties:\n  app.m:\n    <<: {a: 1}\n    b: 2\n`,
      `checks: {}\nproperties:\n  app.k: {? [1, 2] : 1}\n`,
      `checks: {}\nproperties:\n  app.k: {~: 1}\n`,
      `checks: {}\nproperties:\n  app.k: {1.0: 1, 1: 2}\n`,
      `checks: {}\nproperties:\n  app.k: {"__proto__": 1}\n`,
    ];
    for (const text of docs) {
      const res = await importYaml(text, false);
      if (res.status < 300) {
        const plan = await importYaml((await exportYaml()).text, true);
        const changed = (plan.body as { plan: Array<{ action: string; name: string }> }).plan.filter(
          (i) => i.action !== 'unchanged',
        );
        expect({ text, changed }).toEqual({ text, changed: [] });
      }
    }
  });
});
