// The shared language of Fleetwatch: bus names, the envelope, message and HTTP
// schemas. Imports nothing but zod and the pure CEL parser, so services and the dashboard share it.
export * from './bus/names';
export * from './bus/envelope.schema';
export * from './bus/messages';
export * from './common/ids';
export * from './common/status';
export * from './common/safe-json';
export * from './events/observations.schema';
export * from './commands/commands.schema';
export * from './commands/ingress-order';
export * from './http/errors';
export * from './http/gateway.schema';
export * from './http/gateway-admin.schema';
export * from './http/hosts.schema';
export * from './common/store-safe';
export * from './net/cidr';
export * from './checks/conditions';
export * from './checks/check.schema';
export * from './checks/service-checks.schema';
export * from './checks/config-rpc.schema';
export * from './alerts/duration';
export * from './alerts/matchers.schema';
export * from './alerts/rule.schema';
export * from './alerts/silence.schema';
export * from './alerts/channel.schema';
export * from './alerts/default-rules';
