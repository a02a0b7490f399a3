import { kindSelected, type AlertSelector, type InstanceKind, type TargetKind } from '@fleetwatch/contracts';

/** What the engine knows of a target to select it and to label and describe its alerts. */
export interface AlertTarget {
  /** `check:<id>`, `host:<id>`, `instance:<id>` (SPEC §11). */
  id: string;
  kind: TargetKind;
  /** A pushed instance's own kind (`container`, `pod`, …) as its latest update said; absent/null: none known. */
  instanceKind?: InstanceKind | null;
  /** Human name (a check's name, a host's hostname); never parsed as a template. */
  name: string;
  site: string;
  tags: readonly string[];
  /** Locations the target is watched from. */
  locations: readonly string[];
}

/** A selector prepared for matching many targets: sets instead of arrays. */
export interface CompiledSelector {
  matches(target: AlertTarget): boolean;
}

/**
 * Every given field must match; inside a field any value matches, except tags (all must be present).
 * An empty selector matches every target.
 */
export function compileSelector(selector: AlertSelector): CompiledSelector {
  const ids = selector.targetIds.length ? new Set(selector.targetIds) : null;
  const sites = selector.sites.length ? new Set(selector.sites) : null;
  const kinds = selector.kinds.length ? new Set<string>(selector.kinds) : null;
  const locations = selector.locations.length ? new Set(selector.locations) : null;
  const tags = selector.tags;
  return {
    matches(t) {
      if (ids && !ids.has(t.id)) return false;
      if (kinds && !kindSelected(kinds, t.kind, t.instanceKind)) return false;
      if (sites && !sites.has(t.site)) return false;
      if (locations && !t.locations.some((l) => locations.has(l))) return false;
      for (const tag of tags) if (!t.tags.includes(tag)) return false;
      return true;
    },
  };
}

/** One-off form of `compileSelector`. */
export function selectorMatches(selector: AlertSelector, target: AlertTarget): boolean {
  return compileSelector(selector).matches(target);
}
