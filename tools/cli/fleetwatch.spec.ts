import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';

// The CLI is plain Node ESM (no build): its modules are exercised in a Node process of their
// own (Jest runs CommonJS), through a small script that prints what they return as JSON.

const root = join(__dirname, '../..');
const cli = join(root, 'tools/cli/fleetwatch.mjs');

/** Runs `body` (an async function body with `args` and `plan` in scope) in Node and returns its JSON result. */
function inNode<T>(body: string, input: unknown): T {
  const script = `
    import * as args from ${JSON.stringify(join(root, 'tools/cli/lib/args.mjs'))};
    import * as plan from ${JSON.stringify(join(root, 'tools/cli/lib/plan.mjs'))};
    const input = JSON.parse(process.argv[1]);
    const run = async () => { ${body} };
    process.stdout.write(JSON.stringify(await run()));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(input)], {
    encoding: 'utf8',
  });
  return JSON.parse(out) as T;
}

const parse = (argv: string[], env: Record<string, string> = {}) =>
  inNode<Record<string, unknown> | { usage: string }>(
    `try { return args.parseCommand(input.argv, input.env); } catch (e) { return { usage: e.message }; }`,
    { argv, env },
  );

describe('fleetwatch CLI: arguments', () => {
  it('reads commands, options and credentials from argv and the environment', () => {
    expect(
      parse(['config', 'apply', 'site.yaml', '--no-prune', '--url', 'http://gw:3000/'], {
        FLEETWATCH_API_KEY: 'fwk_x',
      }),
    ).toEqual({
      action: 'import',
      file: 'site.yaml',
      url: 'http://gw:3000',
      token: 'fwk_x',
      dryRun: false,
      prune: false,
      detailedExitCode: false,
      json: false,
      timeoutMs: 60_000,
    });
    expect(
      parse(['config', 'plan', 'a.yaml', '--if-match=7', '--detailed-exitcode'], { FLEETWATCH_TOKEN: 'fws_t' }),
    ).toMatchObject({
      dryRun: true,
      prune: true,
      ifMatch: 7,
      detailedExitCode: true,
      url: 'http://127.0.0.1:3000',
      token: 'fws_t',
    });
    // --token beats the environment; the session token beats the API key.
    expect(
      parse(['config', 'export', '--token', 'cli'], { FLEETWATCH_TOKEN: 'a', FLEETWATCH_API_KEY: 'b' }),
    ).toMatchObject({
      action: 'export',
      token: 'cli',
    });
    expect(parse(['config', 'export'], { FLEETWATCH_TOKEN: 'a', FLEETWATCH_API_KEY: 'b' })).toMatchObject({
      token: 'a',
    });
    expect(parse(['config', 'apply', 'x.yaml', '--dry-run'], { FLEETWATCH_TOKEN: 'a' })).toMatchObject({
      dryRun: true,
    });
  });

  it('refuses what it does not understand, saying why', () => {
    const cases: Array<[string[], string]> = [
      [['config', 'apply'], 'give the YAML file'],
      [['config', 'apply', 'a.yaml'], 'no credentials'],
      [['config', 'apply', 'a.yaml', '--token', 't', '--bogus'], 'unknown option --bogus'],
      [['config', 'apply', 'a.yaml', '--token'], '--token needs a value'],
      [['config', 'apply', 'a.yaml', '--token', 't', '--if-match', 'v7'], '--if-match needs a config version number'],
      [['config', 'export', 'a.yaml', '--token', 't'], 'takes no file'],
      [['config', 'export', '--token', 't', '--no-prune'], '--no-prune does not apply'],
      [['config', 'plan', 'a.yaml', '--token', 't', '--output', 'o'], '--output applies to config export only'],
      [['config', 'destroy', '--token', 't'], 'unknown command "config destroy"'],
      [['checks', 'list'], 'unknown command "checks"'],
      [[], 'no command given'],
      [['config', 'plan', 'a.yaml', '--token', 't', '--url', 'ftp://x'], '--url must be an http(s) URL'],
    ];
    const answers = inNode<Array<{ usage?: string }>>(
      `return input.map((argv) => { try { return args.parseCommand(argv, {}); } catch (e) { return { usage: e.message }; } });`,
      cases.map(([argv]) => argv),
    );
    cases.forEach(([argv, reason], i) =>
      expect({ argv, ...answers[i] }).toEqual({ argv, usage: expect.stringContaining(reason) }),
    );
  });

  it('the order of options does not matter', () => {
    const options = [['--no-prune'], ['--if-match', '3'], ['--url', 'http://h:1'], ['--token', 'k'], ['--json']];
    const cases = fc.sample(fc.shuffledSubarray(options, { minLength: options.length }), 15);
    const results = inNode<unknown[]>(
      `return input.map((argv) => args.parseCommand(argv, {}));`,
      cases.map((order) => ['config', 'plan', 'f.yaml', ...order.flat()]),
    );
    for (const r of results) expect(r).toEqual(results[0]);
  });

  it('as a process: usage errors exit 64 with the usage text, --help exits 0', () => {
    const bad = spawnSync(process.execPath, [cli, 'config', 'apply'], { encoding: 'utf8', env: {} });
    expect(bad.status).toBe(64);
    expect(bad.stderr).toContain('give the YAML file');
    expect(bad.stderr).toContain('Usage: npm run fleetwatch');
    const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('config apply FILE.yaml');
    const unreadable = spawnSync(process.execPath, [cli, 'config', 'plan', '/nonexistent/site.yaml', '--token', 't'], {
      encoding: 'utf8',
    });
    expect(unreadable.status).toBe(1);
    expect(unreadable.stderr).toContain('cannot read /nonexistent/site.yaml');
  });
});

describe('fleetwatch CLI: rendering', () => {
  const result = {
    dryRun: true,
    version: 7,
    plan: [
      { action: 'unchanged', name: 'db', id: 'id-db' },
      { action: 'delete', name: 'old', id: 'id-old' },
      {
        action: 'change',
        name: 'api',
        id: 'id-api',
        diff: [
          { path: 'intervalSeconds', before: 30, after: 60 },
          { path: 'tags', before: ['a'], after: ['a', 'b'] },
          { path: 'description', after: 'new' },
          { path: 'body', before: 'x'.repeat(300), after: 'y' },
        ],
      },
      { action: 'create', name: 'web', id: null },
    ],
  };

  it('a plan: creates, changes with each field, deletes; unchanged only counted', () => {
    const text = inNode<string>(`return plan.renderPlan(input);`, result);
    expect(text).toBe(
      [
        'Plan against config version 7:',
        '  + create web',
        '  ~ change api  (id-api)',
        '      intervalSeconds: 30 → 60',
        '      tags: ["a"] → ["a","b"]',
        '      description: (unset) → "new"',
        `      body: "${'x'.repeat(158)}… → "y"`,
        '  - delete old  (id-old)',
        'Plan: 1 to create, 1 to change, 1 to delete, 1 unchanged.',
        '',
      ].join('\n'),
    );
  });

  it('an applied import names its version; one that changed nothing says so', () => {
    expect(inNode<string>(`return plan.renderPlan(input);`, { ...result, dryRun: false, version: 8 })).toContain(
      'Applied as config version 8: 1 to create, 1 to change, 1 to delete, 1 unchanged.',
    );
    expect(
      inNode<string>(`return plan.renderPlan(input);`, {
        dryRun: false,
        version: 8,
        plan: [{ action: 'unchanged', name: 'db', id: 'x' }],
      }),
    ).toBe('Nothing to apply:\nNo changes: the site matches the file (config version 8).\n');
  });

  it('the ping URLs of push checks an apply created, by name (shown once)', () => {
    const text = inNode<string>(`return plan.renderPlan(input);`, {
      dryRun: false,
      version: 9,
      plan: [{ action: 'create', name: 'nightly backup', id: 'id-1' }],
      pingTokens: { 'id-1': 'fwp_abc' },
      pingUrls: { 'id-1': 'http://ingest:3001/ping/fwp_abc' },
    });
    expect(text).toContain(
      'Ping URLs of the new push checks (shown this once: store them now):\n  nightly backup: http://ingest:3001/ping/fwp_abc\n',
    );
  });

  it("a failure: the server's code, message, each issue, and the remedy where there is one", () => {
    const invalid = inNode<string>(`return plan.renderError(400, input, 'config apply site.yaml');`, {
      error: {
        code: 'validation_failed',
        message: 'invalid configuration',
        issues: [{ path: 'checks.api.conditions.0', message: 'line 1, column 10: Unexpected token: EOF' }],
      },
    });
    expect(invalid).toBe(
      'fleetwatch: config apply site.yaml failed: 400 validation_failed\n' +
        '  invalid configuration\n' +
        '  checks.api.conditions.0: line 1, column 10: Unexpected token: EOF\n',
    );
    const stale = inNode<string>(`return plan.renderError(409, input, 'config apply a.yaml');`, {
      error: { code: 'conflict', message: 'configuration changed since version 3', currentVersion: 5 },
    });
    expect(stale).toContain('the site is at config version 5');
  });
});
