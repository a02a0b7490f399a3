import type { ChannelConfig } from '@fleetwatch/contracts';
import { targetHostProblem, type TargetPolicy } from '@fleetwatch/domain';

// Channels go through the same target policy as checks (SPEC §5, FLEETWATCH_CHECK_DENY_NETWORKS): the hosts a
// channel sends to — a webhook's or PagerDuty's URL, the Slack/Teams webhook URL (a secret), the SMTP host — are
// refused at save time where they are literal addresses in a denied network or denied names, and every send
// connects only to an address the policy allows (apps/aggregator/src/alerts/delivery/checked-connect.ts).

export interface ChannelTarget {
  /** The channel's field (`url`, `eventsUrl`, `host`). */
  field: string;
  host: string;
}

/** The host of an http(s) URL as the client connects to it (IPv6 without brackets); null if not a URL. */
export function hostOfUrl(text: string): string | null {
  try {
    const host = new URL(text).hostname;
    return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host || null;
  } catch {
    return null;
  }
}

/** Where a channel sends to; `secrets` holds the plaintext secret fields (Slack/Teams URLs are secrets). */
export function channelTargets(config: ChannelConfig, secrets: Readonly<Record<string, string | null | undefined>>) {
  const out: ChannelTarget[] = [];
  const url = (field: string, value: string | null | undefined) => {
    const host = typeof value === 'string' ? hostOfUrl(value) : null;
    if (host) out.push({ field, host });
  };
  switch (config.type) {
    case 'webhook':
      url('url', config.url);
      break;
    case 'pagerduty':
      url('eventsUrl', config.eventsUrl);
      break;
    case 'slack':
    case 'teams':
      url('url', secrets['url']);
      break;
    case 'email':
      out.push({ field: 'host', host: config.host });
      break;
  }
  return out;
}

/** The first of a channel's hosts the policy refuses as written, as a validation issue; null when none. */
export function channelTargetProblem(
  config: ChannelConfig,
  secrets: Readonly<Record<string, string | null | undefined>>,
  policy: TargetPolicy,
): { path: string; message: string } | null {
  for (const t of channelTargets(config, secrets)) {
    const problem = targetHostProblem(t.host, policy);
    if (problem) return { path: t.field, message: problem };
  }
  return null;
}
