import { DEFAULT_ALERT_RULES } from '@fleetwatch/contracts';
import { DEFAULT_RULE_SEEDS, DEFAULT_RULES_SEED } from './default-rules.seeder';

// The seed sets: a shipped rule in no set would never be seeded, one in two sets could come back after a delete,
// and a set renamed or a rule added to an old set would be missed (or re-run) on installs seeded before.

describe('DEFAULT_RULE_SEEDS', () => {
  it('holds every shipped rule in exactly one set, and nothing else', () => {
    const ids = DEFAULT_RULE_SEEDS.flatMap((s) => s.ruleIds);
    expect([...ids].sort()).toEqual(DEFAULT_ALERT_RULES.map((r) => r.id).sort());
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(DEFAULT_RULE_SEEDS.map((s) => s.name)).size).toBe(DEFAULT_RULE_SEEDS.length);
  });

  it('keeps the sets of releases out there as they were: the first release, then the GPU-lost rule', () => {
    expect(DEFAULT_RULE_SEEDS.map((s) => [s.name, s.ruleIds])).toEqual([
      [
        DEFAULT_RULES_SEED,
        [
          'default.target-down',
          'default.target-partial',
          'default.target-stale',
          'default.host-cpu-high',
          'default.host-disk-full',
          'default.gpu-temperature-high',
        ],
      ],
      ['default-alert-rules.2026-12-gpus-missing', ['default.gpus-missing']],
    ]);
    expect(DEFAULT_RULES_SEED).toBe('default-alert-rules');
  });
});
