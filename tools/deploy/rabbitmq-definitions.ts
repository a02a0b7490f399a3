// RabbitMQ definitions (deploy/rabbitmq/definitions.json) built from the topology the services declare at
// boot: the same queue lists (apps/*/src/bus-queues.ts), the same queue arguments (libs/messaging
// workQueueArguments / deadLetterQueueArguments) and the same names (libs/contracts). No users, passwords or
// permissions: those are the operator's. `node tools/deploy/rabbitmq-definitions.mjs` writes the file;
// tools/deploy/rabbitmq-definitions.int-spec.ts fails when the committed file and this code disagree.
import { writeFileSync } from 'node:fs';
import { deadLetterQueueOf, ExchangeName } from '@fleetwatch/contracts';
import {
  deadLetterQueueArguments,
  DEFAULT_DELIVERY_LIMIT,
  queueArgumentsOf,
  queueSpecOf,
  TOPIC_EXCHANGES,
  type QueueRef,
  type QueueSpec,
} from '@fleetwatch/messaging';
import { AGGREGATOR_QUEUES } from '../../apps/aggregator/src/bus-queues';
import { API_GATEWAY_CONSUMED_QUEUE } from '../../apps/api-gateway/src/bus-queues';
import { COLLECTOR_QUEUES } from '../../apps/collector/src/bus-queues';
import { STATUS_INGEST_CONSUMED_QUEUE, STATUS_INGEST_QUEUES } from '../../apps/status-ingest/src/bus-queues';
import { SYNC_ORCHESTRATOR_QUEUES } from '../../apps/sync-orchestrator/src/bus-queues';

/** Every durable queue each service declares (at boot, or before consuming). */
export const SERVICE_QUEUES: Readonly<Record<string, readonly QueueRef[]>> = {
  aggregator: AGGREGATOR_QUEUES,
  'api-gateway': [API_GATEWAY_CONSUMED_QUEUE],
  collector: COLLECTOR_QUEUES,
  'status-ingest': [...STATUS_INGEST_QUEUES, STATUS_INGEST_CONSUMED_QUEUE],
  'sync-orchestrator': SYNC_ORCHESTRATOR_QUEUES,
};

type Arguments = Record<string, string | number | boolean>;

export interface RabbitDefinitions {
  vhosts: { name: string }[];
  exchanges: {
    name: string;
    vhost: string;
    type: string;
    durable: boolean;
    auto_delete: boolean;
    internal: boolean;
    arguments: Arguments;
  }[];
  queues: { name: string; vhost: string; durable: boolean; auto_delete: boolean; arguments: Arguments }[];
  bindings: {
    source: string;
    vhost: string;
    destination: string;
    destination_type: 'queue';
    routing_key: string;
    arguments: Arguments;
  }[];
  policies: never[];
}

/** Every queue spec any service declares, by name (a queue declared by several services must agree). */
export function siteQueueSpecs(): QueueSpec[] {
  const byName = new Map<string, QueueSpec>();
  for (const [service, refs] of Object.entries(SERVICE_QUEUES)) {
    for (const ref of refs) {
      const spec = queueSpecOf(ref);
      const seen = byName.get(spec.name);
      if (seen && JSON.stringify(seen) !== JSON.stringify(spec))
        throw new Error(`${service} declares ${spec.name} unlike another service does`);
      byName.set(spec.name, spec);
    }
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** The definitions of one site's vhost, as `declareTopology` declares them (the default delivery limit). */
export function buildDefinitions(vhost = '/'): RabbitDefinitions {
  const defs: RabbitDefinitions = { vhosts: [{ name: vhost }], exchanges: [], queues: [], bindings: [], policies: [] };
  for (const name of TOPIC_EXCHANGES)
    defs.exchanges.push({
      name,
      vhost,
      type: 'topic',
      durable: true,
      auto_delete: false,
      internal: false,
      arguments: {},
    });
  const bind = (source: string, destination: string, routingKey: string) =>
    defs.bindings.push({
      source,
      vhost,
      destination,
      destination_type: 'queue',
      routing_key: routingKey,
      arguments: {},
    });
  for (const spec of siteQueueSpecs()) {
    const dlq = deadLetterQueueOf(spec.name);
    defs.queues.push({ name: dlq, vhost, durable: true, auto_delete: false, arguments: deadLetterQueueArguments() });
    bind(ExchangeName.DeadLetter, dlq, spec.name);
    const args: Arguments = queueArgumentsOf(spec, DEFAULT_DELIVERY_LIMIT);
    defs.queues.push({ name: spec.name, vhost, durable: true, auto_delete: false, arguments: args });
    for (const b of spec.bindings) bind(b.exchange, spec.name, b.routingKey);
  }
  return defs;
}

/** The file's text: what `node tools/deploy/rabbitmq-definitions.mjs` writes. */
export function renderDefinitions(vhost = '/'): string {
  return `${JSON.stringify(buildDefinitions(vhost), null, 2)}\n`;
}

/** CLI: `[--vhost NAME] [--out FILE | --stdout]`; returns the exit code. */
export function runDefinitionsCli(argv: readonly string[], defaultOut: string): number {
  let vhost = '/';
  let out: string | undefined = defaultOut;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--vhost' && argv[i + 1]) vhost = argv[++i];
    else if (a === '--out' && argv[i + 1]) out = argv[++i];
    else if (a === '--stdout') out = undefined;
    else {
      process.stderr.write('usage: rabbitmq-definitions.mjs [--vhost NAME] [--out FILE | --stdout]\n');
      return 2;
    }
  }
  const text = renderDefinitions(vhost);
  if (out === undefined) process.stdout.write(text);
  else {
    writeFileSync(out, text);
    process.stderr.write(`wrote ${out} (vhost ${vhost})\n`);
  }
  return 0;
}
