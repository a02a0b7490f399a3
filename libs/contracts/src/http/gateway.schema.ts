import { z } from 'zod';
import { csvOf } from '../common/csv-filter';
import { storableText } from '../common/store-safe';
import { presentedPasswordSchema } from './gateway-admin.schema';
import { cidrSchema } from '../net/cidr';
import type { CheckMetric } from '../events/observations.schema';
import {
  apiKeyScopeSchema,
  instanceKindSchema,
  SelectableKind,
  targetKindSchema,
  TargetStatus,
  targetStatusSchema,
  userRoleSchema,
} from '../common/status';

export const loginRequestSchema = z.strictObject({
  username: storableText(128, 1),
  password: presentedPasswordSchema,
});
export type LoginRequest = z.infer<typeof loginRequestSchema>;
export interface LoginResponse {
  token: string;
  expiresAt: string;
  user: { id: string; username: string; role: z.infer<typeof userRoleSchema> };
}

export const createApiKeyRequestSchema = z.strictObject({
  name: storableText(128).trim().min(1),
  scopes: z.array(apiKeyScopeSchema).min(1, 'give at least one scope').max(8),
  allowedCidrs: z.array(cidrSchema).max(64).optional(),
  /** Subject CN a verified client certificate must carry at status-ingest (mutual TLS); null or absent: none needed. */
  clientCertSubject: storableText(256)
    .trim()
    .min(1)
    .regex(/^\P{Cc}+$/u, 'must not contain control characters')
    .nullable()
    .optional(),
});
export type CreateApiKeyRequest = z.infer<typeof createApiKeyRequestSchema>;
export interface CreateApiKeyResponse {
  id: string;
  /** Shown once; only a hash is stored. */
  key: string;
  name: string;
  scopes: string[];
  prefix: string;
}

/** What `kind` filters a target list by: the one vocabulary of target and instance kinds (SelectableKind). */
export const TargetListKind = SelectableKind;
export type TargetListKind = SelectableKind;

export const listTargetsQuerySchema = z.strictObject({
  kind: csvOf(TargetListKind).optional(),
  status: csvOf(TargetStatus).optional(),
  tag: storableText(128).optional(),
  location: storableText(128).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: storableText(512).optional(),
});
export type ListTargetsQuery = z.infer<typeof listTargetsQuerySchema>;

/** `GET /api/v1/targets/recent`: how many of the targets whose status changed last. */
export const recentTargetsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(12),
});
export type RecentTargetsQuery = z.infer<typeof recentTargetsQuerySchema>;

/**
 * `GET /api/v1/targets/{id}/history` beyond 60 minutes: 1-minute rollups, merged into steps of whole minutes so that a
 * location has at most this many points (24 h: 1-minute points; 7 d: 7-minute; 90 d: 90-minute). Unmerged, 90 days of
 * one location were 129,600 points (~20 MB of JSON), read whole by the gateway.
 */
export const HISTORY_MAX_POINTS_PER_LOCATION = 1440;

export const historyQuerySchema = z.strictObject({
  minutes: z.coerce
    .number()
    .int()
    .min(1)
    .max(60 * 24 * 90)
    .default(60),
  location: storableText(128).optional(),
});

export interface LocationStatusView {
  location: string;
  status: z.infer<typeof targetStatusSchema>;
  lastSeen: string | null;
  latencyMs: number | null;
  detail: string | null;
  /** A service collector's figures from this location's latest result that carried them (issue 16). */
  metrics?: CheckMetric[];
}

export interface TargetView {
  id: string;
  kind: z.infer<typeof targetKindSchema>;
  name: string;
  status: z.infer<typeof targetStatusSchema>;
  consensus: z.infer<typeof targetStatusSchema>;
  locations: LocationStatusView[];
  lastSeen: string | null;
  since: string | null;
  tags: string[];
  labels: Record<string, string>;
  lifecycle: string | null;
  /**
   * A pushed instance's own kind, as its latest update said (`container`, `pod`, …); null for checks and hosts, and
   * for an instance not updated since Fleetwatch began keeping it.
   */
  instanceKind: z.infer<typeof instanceKindSchema> | null;
  /**
   * Only in a list, only where this target's record in live state (Redis) cannot be read (corrupt): the view is the
   * durable state (Postgres) as the aggregator last committed it — locations without their latest check figures — and
   * `reason` says why. Gone once the target is next written (its next result or update).
   */
  fromDurableState?: { reason: string };
}

/** The targets whose status changed last, newest first. */
export interface RecentTargetsResponse {
  items: TargetView[];
}

export interface TargetListResponse {
  items: TargetView[];
  nextCursor: string | null;
  total: number;
}

export interface HistoryPoint {
  bucket: string;
  location: string;
  count: number;
  okCount: number;
  minLatencyMs: number | null;
  avgLatencyMs: number | null;
  maxLatencyMs: number | null;
  p95LatencyMs: number | null;
  /** Raw points of service collectors' results: the figures the result carried (issue 16). */
  metrics?: CheckMetric[];
}
export interface HistoryResponse {
  targetId: string;
  minutes: number;
  resolution: 'raw' | '1m';
  /**
   * What one point covers: null for raw points (one observation each), 60 for 1-minute rollups, a multiple of 60 for
   * rollups merged into steps (HISTORY_MAX_POINTS_PER_LOCATION). Always sent by the gateway.
   */
  stepSeconds?: number | null;
  points: HistoryPoint[];
  events: { at: string; location: string | null; from: string; to: string; reason: string }[];
}
