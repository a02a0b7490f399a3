import { checkInputSchema, type CheckInput, type CheckSpec, type CheckType } from '@fleetwatch/contracts';
import { createTargetPolicy, DEFAULT_DENY_NETWORKS, type TargetPolicy } from '@fleetwatch/domain';
import type { ProbeContext } from '../../probe';

// What the runner hands a probe, built the way it will be: the check through the real
// schema (defaults applied, as a stored definition is), the policy from the default
// deny list plus what a test adds, the signal from the check's timeout.

export function checkOf<T extends CheckType>(input: Extract<CheckInput, { type: T }>): Extract<CheckSpec, { type: T }> {
  return checkInputSchema.parse(input) as Extract<CheckSpec, { type: T }>;
}

export function probeContext(
  o: { timeoutMs?: number; policy?: TargetPolicy; deny?: string[]; dnsServers?: string[] } = {},
): ProbeContext {
  const timeoutMs = o.timeoutMs ?? 5_000;
  return {
    signal: AbortSignal.timeout(timeoutMs),
    timeoutMs,
    policy: o.policy ?? createTargetPolicy([...DEFAULT_DENY_NETWORKS, ...(o.deny ?? [])]),
    env: {},
    dnsServers: o.dnsServers,
  };
}
