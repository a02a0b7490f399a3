import type { SchemaObject } from '@nestjs/swagger';
import { ApiKeyScope, InstanceKind, TargetKind, TargetStatus, UserRole } from '@fleetwatch/contracts';

// OpenAPI shapes of the answers (the contracts declare them as TypeScript interfaces).

const str: SchemaObject = { type: 'string' };
const nullableStr: SchemaObject = { type: 'string', nullable: true };
const dateTime: SchemaObject = { type: 'string', format: 'date-time' };
const nullableDateTime: SchemaObject = { type: 'string', format: 'date-time', nullable: true };
const int: SchemaObject = { type: 'integer' };
const nullableNumber: SchemaObject = { type: 'number', nullable: true };
const role: SchemaObject = { type: 'string', enum: Object.values(UserRole) };
const status: SchemaObject = { type: 'string', enum: Object.values(TargetStatus) };
const scopes: SchemaObject = { type: 'array', items: { type: 'string', enum: Object.values(ApiKeyScope) } };

const object = (properties: Record<string, SchemaObject>): SchemaObject => ({
  type: 'object',
  required: Object.keys(properties),
  properties,
});

export const userViewSchema = object({ id: str, username: str, role, createdAt: dateTime, updatedAt: dateTime });

export const loginResponseSchema = object({
  token: { type: 'string', description: 'Bearer token (fws_…)' },
  expiresAt: dateTime,
  user: object({ id: str, username: str, role }),
});

export const principalSchema: SchemaObject = {
  type: 'object',
  required: ['kind', 'id', 'name', 'role'],
  properties: { kind: { type: 'string', enum: ['user', 'api-key'] }, id: str, name: str, role, scopes },
};

export const apiKeyViewSchema = object({
  id: str,
  name: str,
  prefix: { type: 'string', description: 'First 12 characters of the key (not secret)' },
  scopes,
  allowedCidrs: { type: 'array', items: str },
  clientCertSubject: {
    type: 'string',
    nullable: true,
    description: 'Subject CN a client certificate must carry at status-ingest (mutual TLS); null: none needed',
  },
  createdBy: { type: 'string', nullable: true, description: "The creator's user id; null once that user is deleted" },
  createdByName: {
    type: 'string',
    nullable: true,
    description: "The creator's username when the key was made, kept after the user is deleted",
  },
  createdAt: dateTime,
  lastUsedAt: nullableDateTime,
});

export const createApiKeyResponseSchema = object({
  id: str,
  key: { type: 'string', description: 'The key (fwk_…): shown this once, only a hash is stored' },
  name: str,
  scopes,
  prefix: str,
});

export const heartbeatViewSchema = object({
  id: str,
  targetId: str,
  name: str,
  periodSeconds: int,
  graceSeconds: int,
  maxRuntimeSeconds: { type: 'integer', nullable: true },
  lastPingAt: nullableDateTime,
  lastStartAt: nullableDateTime,
  createdAt: dateTime,
});

export const createHeartbeatResponseSchema: SchemaObject = {
  ...heartbeatViewSchema,
  required: [...(heartbeatViewSchema.required ?? []), 'token', 'pingUrl'],
  properties: {
    ...heartbeatViewSchema.properties,
    token: { type: 'string', description: 'Ping token: shown this once, only a hash is stored' },
    pingUrl: {
      type: 'string',
      description:
        'status-ingest URL to ping (GET/POST/HEAD); `/start`, `/fail` and an exit code 0–255 (`/0`: success) below it',
    },
  },
};

const locationView = object({
  location: str,
  status,
  lastSeen: nullableDateTime,
  latencyMs: nullableNumber,
  detail: nullableStr,
});

export const targetViewSchema = object({
  id: { type: 'string', example: 'instance:web-1' },
  kind: { type: 'string', enum: Object.values(TargetKind) },
  name: str,
  status,
  consensus: status,
  locations: { type: 'array', items: locationView },
  lastSeen: nullableDateTime,
  since: nullableDateTime,
  tags: { type: 'array', items: str },
  labels: { type: 'object', additionalProperties: str },
  lifecycle: nullableStr,
  instanceKind: {
    type: 'string',
    enum: Object.values(InstanceKind),
    nullable: true,
    description:
      "A pushed instance's own kind, as its latest update said; null for checks and hosts, and for an instance not updated since Fleetwatch began keeping it",
  },
});
targetViewSchema.properties = {
  ...targetViewSchema.properties,
  fromDurableState: {
    type: 'object',
    required: ['reason'],
    properties: { reason: str },
    description:
      "Lists only, absent normally: this target's record in live state (Redis) cannot be read (corrupt), so the view is its durable state (Postgres) as last committed, and `reason` says why; gone once the target is next written",
  },
};

export const targetListSchema = object({
  items: { type: 'array', items: targetViewSchema },
  nextCursor: { type: 'string', nullable: true, description: 'Pass as `cursor` for the next page; null on the last' },
  total: { type: 'integer', description: 'Targets matching the filters' },
});

export const recentTargetsSchema = object({
  items: { type: 'array', items: targetViewSchema, description: 'Newest status change first' },
});

export const historyResponseSchema = object({
  targetId: str,
  minutes: int,
  resolution: {
    type: 'string',
    enum: ['raw', '1m'],
    description: 'raw observations up to 60 minutes, 1-minute rollups beyond',
  },
  stepSeconds: {
    type: 'integer',
    nullable: true,
    description:
      "What one point covers: null for raw points; 60 for 1-minute rollups up to 1440 minutes; beyond, rollups merged into steps of whole minutes (at most 1440 points a location): counts summed, least min, greatest max, mean over every latency, p95 the greatest of the minutes' p95s (an upper bound of the step's p95)",
  },
  points: {
    type: 'array',
    items: object({
      bucket: dateTime,
      location: str,
      count: int,
      okCount: int,
      minLatencyMs: nullableNumber,
      avgLatencyMs: nullableNumber,
      maxLatencyMs: nullableNumber,
      p95LatencyMs: nullableNumber,
    }),
  },
  events: {
    type: 'array',
    items: object({ at: dateTime, location: nullableStr, from: status, to: status, reason: str }),
  },
});
