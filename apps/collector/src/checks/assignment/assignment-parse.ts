import { checkInputSchema, describeIssues, UUID_PATTERN, type CheckDefinition } from '@fleetwatch/contracts';

// Reads the checks of an assignment (from the owner or from disk) with the same contract
// schema the owner validated them with. A check this collector cannot read — a type or
// field a newer owner added — is left out with its reason; the others still run.
// Validated checks are remembered by id and version, so a new assignment (any config
// change anywhere bumps it) re-validates only the checks that changed.

export interface Rejected {
  id: string;
  reason: string;
}

export class AssignmentParser {
  private cache = new Map<string, { key: string; check: CheckDefinition }>();

  parse(raw: readonly unknown[]): { checks: CheckDefinition[]; rejected: Rejected[] } {
    const checks: CheckDefinition[] = [];
    const rejected: Rejected[] = [];
    const next = new Map<string, { key: string; check: CheckDefinition }>();
    const seen = new Set<string>();
    for (const item of raw) {
      const meta = item as Partial<CheckDefinition> | null;
      const id = typeof meta?.id === 'string' ? meta.id : '';
      if (!UUID_PATTERN.test(id) || typeof meta?.targetId !== 'string' || !Number.isInteger(meta.version)) {
        rejected.push({ id: id || '(none)', reason: 'no valid id, targetId and version' });
        continue;
      }
      if (seen.has(id)) {
        rejected.push({ id, reason: 'listed twice' });
        continue;
      }
      seen.add(id);
      const key = `${meta.version}|${String(meta.updatedAt)}`;
      const hit = this.cache.get(id);
      if (hit && hit.key === key) {
        next.set(id, hit);
        checks.push(hit.check);
        continue;
      }
      const { id: _id, targetId, version, createdAt, updatedAt, ...spec } = meta as CheckDefinition;
      const parsed = checkInputSchema.safeParse(spec);
      if (!parsed.success) {
        rejected.push({ id, reason: describeIssues(parsed.error) });
        continue;
      }
      // The spread comes last, not first: in Node 20's V8 a literal that starts with a spread and adds properties
      // after it (`{ ...obj, id }`) gets a hidden class of its own each time — a map and a ~0.5 KB descriptor array
      // per check, 5.7 MB of heap at 10,000 checks (heap snapshot, docs/benchmarks.md) — while one that spreads
      // after its own properties shares one. The schema's output never holds these five keys, so nothing is overridden.
      const check: CheckDefinition = {
        id,
        targetId,
        version,
        createdAt: String(createdAt),
        updatedAt: String(updatedAt),
        ...parsed.data,
      };
      next.set(id, { key, check });
      checks.push(check);
    }
    this.cache = next;
    return { checks, rejected };
  }
}
