import { spawnSync } from 'node:child_process';
import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import type { LocationRecord, TargetWrite } from '@fleetwatch/live-state';
import { GatewayHarness, startGateway } from '../int-spec.helpers';
import * as testing from '@fleetwatch/testing';

// /metrics on the gateway: process metrics plus the site's targets from live state,
// generated at scrape time, label values escaped, and accepted by promtool.

const PROMTOOL_MISSING =
  'promtool is not installed, so `promtool check metrics` cannot run: install it with ' +
  '`apt-get install -y --no-install-recommends prometheus` (the CI script does).';

let gw: GatewayHarness;

function target(id: string, kind: TargetKind, status: S, locations: Record<string, S>): TargetWrite {
  const locs: Record<string, LocationRecord> = {};
  for (const [loc, s] of Object.entries(locations))
    locs[loc] = { status: s, observedAt: 1, lastSeen: 1, latencyMs: null, detail: null, lifecycle: null };
  return {
    id,
    kind,
    name: id,
    status,
    previousStatus: null,
    since: 1,
    lastSeen: 1,
    lastLatencyMs: null,
    lifecycle: null,
    tags: [],
    labels: {},
    seq: 1,
    locations: locs,
  };
}

const TRICKY = [
  'instance:quote"d',
  'instance:back\\slash',
  'instance:new\nline',
  'instance:ünïcødé ✓ {x="y"}',
  `instance:${'long-'.repeat(60)}`,
];

async function scrape(): Promise<string> {
  const res = await gw.request<string>('GET', '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text;
}

/** The exposition-format label value of `v`, escaped by hand. */
const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

beforeAll(async () => {
  gw = await startGateway(testing, 'metrics');
  await gw.live.writeTargets([
    target('check:api', TargetKind.Check, S.Partial, { 'eu-west-1': S.Up, 'us-east-1': S.Down }),
    target('check:db', TargetKind.Check, S.Up, { 'eu-west-1': S.Up }),
    target('host:gpu-1', TargetKind.Host, S.Stale, { 'lab-2': S.Stale }),
    target('instance:paused', TargetKind.Instance, S.Paused, { 'eu-west-1': S.Paused }),
    target('instance:new', TargetKind.Instance, S.Unknown, {}),
    ...TRICKY.map((id) => target(id, TargetKind.Instance, S.Down, { 'eu-west-1': S.Down })),
  ]);
});
afterAll(() => gw?.close());

describe('GET /metrics', () => {
  it('needs no token and carries the process metrics', async () => {
    const text = await scrape();
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
  });

  it('fleetwatch_target_up: per location, and location="all" for the consensus; none while PAUSED or UNKNOWN', async () => {
    const lines = (await scrape()).split('\n').filter((l) => l.startsWith('fleetwatch_target_up{'));
    expect(lines).toEqual(
      expect.arrayContaining([
        'fleetwatch_target_up{target="check:api",kind="check",location="eu-west-1"} 1',
        'fleetwatch_target_up{target="check:api",kind="check",location="us-east-1"} 0',
        'fleetwatch_target_up{target="check:api",kind="check",location="all"} 0',
        'fleetwatch_target_up{target="check:db",kind="check",location="eu-west-1"} 1',
        'fleetwatch_target_up{target="check:db",kind="check",location="all"} 1',
        'fleetwatch_target_up{target="host:gpu-1",kind="host",location="lab-2"} 0',
        'fleetwatch_target_up{target="host:gpu-1",kind="host",location="all"} 0',
      ]),
    );
    expect(lines.filter((l) => l.includes('instance:paused') || l.includes('"instance:new"'))).toEqual([]);
    // Per location (2 + 1 + 1) and consensus (3) for the first three; 5 tricky DOWN targets × 2.
    expect(lines).toHaveLength(4 + 3 + 5 * 2);
  });

  it('fleetwatch_target_status: one series per status value, 1 for the current one', async () => {
    const lines = (await scrape())
      .split('\n')
      .filter((l) => l.startsWith('fleetwatch_target_status{target="check:api"'));
    expect(lines.sort()).toEqual(
      Object.values(S)
        .map((s) => `fleetwatch_target_status{target="check:api",status="${s}"} ${s === S.Partial ? 1 : 0}`)
        .sort(),
    );
    const text = await scrape();
    expect(text).toContain('fleetwatch_target_status{target="instance:paused",status="PAUSED"} 1');
    expect(text).toContain('fleetwatch_target_status{target="instance:new",status="UNKNOWN"} 1');
  });

  it('counts targets by status', async () => {
    const text = await scrape();
    expect(text).toContain('fleetwatch_targets{status="UP"} 1');
    expect(text).toContain('fleetwatch_targets{status="DOWN"} 5');
    expect(text).toContain('fleetwatch_targets{status="PARTIAL"} 1');
    expect(text).toContain('fleetwatch_targets{status="STALE"} 1');
    expect(text).toContain('fleetwatch_targets{status="PAUSED"} 1');
    expect(text).toContain('fleetwatch_targets{status="UNKNOWN"} 1');
  });

  it('escapes quotes, backslashes and newlines in label values', async () => {
    const text = await scrape();
    expect(text).toContain('fleetwatch_target_up{target="instance:quote\\"d",kind="instance",location="eu-west-1"} 0');
    expect(text).toContain('fleetwatch_target_up{target="instance:back\\\\slash",kind="instance",location="all"} 0');
    expect(text).toContain('fleetwatch_target_status{target="instance:new\\nline",status="DOWN"} 1');
    for (const id of TRICKY) expect(text).toContain(`target="${esc(id)}"`);
    // No raw newline inside any sample line: every line is a comment, a sample or empty.
    for (const line of text.split('\n')) expect(line).toMatch(/^(#.*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+|)$/);
  });

  it('reflects live state at scrape time', async () => {
    await gw.live.writeTargets([target('instance:late', TargetKind.Instance, S.Up, { 'eu-west-1': S.Up })]);
    await new Promise((r) => setTimeout(r, 1100)); // past the 1 s snapshot shared by close scrapes
    expect(await scrape()).toContain('fleetwatch_target_up{target="instance:late",kind="instance",location="all"} 1');
  });

  it('passes `promtool check metrics`', async () => {
    const text = await scrape();
    const which = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    if (which.error) throw new Error(PROMTOOL_MISSING);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    expect({ status: check.status, output: `${check.stdout}${check.stderr}`.trim() }).toEqual({
      status: 0,
      output: '',
    });
  });

  it('promtool really checks: it refuses a broken exposition', () => {
    const which = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    if (which.error) throw new Error(PROMTOOL_MISSING);
    const broken = '# TYPE x gauge\nx{target="a"b"} 1\n';
    expect(spawnSync('promtool', ['check', 'metrics'], { input: broken, encoding: 'utf8' }).status).not.toBe(0);
  });
});
