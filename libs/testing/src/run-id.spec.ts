import { isStale, newRunId, resourceTime, runIdTime, STALE_AFTER_MS } from './run-id';

describe('run ids', () => {
  it('encode their creation second and parse back', () => {
    const now = Date.UTC(2025, 0, 1, 12, 0, 0);
    const id = newRunId(now);
    expect(id).toMatch(/^\d{10}_[0-9a-f]{6}$/);
    expect(runIdTime(id)).toBe(now);
  });

  it('recognise resources of a run, and only those', () => {
    const now = Date.UTC(2025, 0, 1, 12, 0, 0);
    const id = newRunId(now - STALE_AFTER_MS - 1000);
    expect(resourceTime(`fw_test_${id}`, 'fw_test_')).not.toBeNull();
    expect(isStale(`fw_test_${id}_tpl`, 'fw_test_', now)).toBe(true);
    expect(isStale(`fw-test-${id}-orders`, 'fw-test-', now)).toBe(true);
    expect(isStale(`fw_test_${newRunId(now)}`, 'fw_test_', now)).toBe(false);
    expect(isStale('fw_test_mine', 'fw_test_', now)).toBe(false);
    expect(isStale('fleetwatch', 'fw_test_', now)).toBe(false);
  });
});
