import { z } from 'zod';
import { storableText } from '../common/store-safe';
import { storableDateTimeSchema } from '../common/safe-json';
import { selectorTagSchema } from '../checks/check-fields';
import { actorSchema, type Page, type WriteResult } from '../checks/config-rpc.schema';

// Public status pages (issue 17): one page per group of targets, selected by tag (and optionally by
// explicit target ids), configured through the configuration owner (sync-orchestrator) like alert
// rules — versioned, audited, a `config.changed` with area `statusPages`, If-Match on writes. The
// public view (`publicStatusPageSchema`) is what anonymous visitors get: display names the page's
// author chose, statuses, daily uptime and incident times — never a target id, name, URL, host,
// check configuration, error message, location or user name.

/** URL-safe: lowercase letters, digits and single dashes inside (`/status/{slug}`). */
export const statusPageSlugSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9](?:-?[a-z0-9])*$/, 'lowercase letters, digits and single dashes inside (URL-safe)');

export const statusPageIdSchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, {
  message: 'a status page id (UUID)',
});

/** How many targets one component may gather (its uptime reads their events: bounded work per request). */
export const STATUS_PAGE_LIMITS = { components: 50, targetsPerComponent: 200, announcements: 20, days: 90 } as const;

export const statusPageComponentSchema = z
  .strictObject({
    /** What visitors see: the only name of the component on the public page. */
    name: storableText(120, 1),
    description: storableText(500).default(''),
    /** Targets carrying ALL these tags belong to the component. */
    tags: z.array(selectorTagSchema).max(16).default([]),
    /** And these targets by id (`check:…`, `host:…`, `instance:…`). */
    targetIds: z.array(storableText(300, 1)).max(STATUS_PAGE_LIMITS.targetsPerComponent).default([]),
  })
  .refine((c) => c.tags.length > 0 || c.targetIds.length > 0, {
    message: 'select targets: give tags, target ids or both',
    path: ['tags'],
  });
export type StatusPageComponent = z.infer<typeof statusPageComponentSchema>;

export const ANNOUNCEMENT_SEVERITIES = ['info', 'maintenance', 'minor', 'major'] as const;
export const statusPageAnnouncementSchema = z
  .strictObject({
    title: storableText(200, 1),
    body: storableText(4000).default(''),
    severity: z.enum(ANNOUNCEMENT_SEVERITIES).default('info'),
    startsAt: storableDateTimeSchema,
    /** Absent: still going on. */
    endsAt: storableDateTimeSchema.optional(),
  })
  .refine((a) => a.endsAt === undefined || Date.parse(a.endsAt) >= Date.parse(a.startsAt), {
    message: 'must not be before startsAt',
    path: ['endsAt'],
  });
export type StatusPageAnnouncement = z.infer<typeof statusPageAnnouncementSchema>;

export const statusPageSpecSchema = z
  .strictObject({
    slug: statusPageSlugSchema,
    title: storableText(200, 1),
    description: storableText(2000).default(''),
    /** Only a published page is served to the public (an unpublished one is a 404 there). */
    published: z.boolean().default(false),
    components: z.array(statusPageComponentSchema).min(1).max(STATUS_PAGE_LIMITS.components),
    announcements: z.array(statusPageAnnouncementSchema).max(STATUS_PAGE_LIMITS.announcements).default([]),
  })
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.components.forEach((c, i) => {
      if (seen.has(c.name))
        ctx.addIssue({ code: 'custom', path: ['components', i, 'name'], message: `repeats "${c.name}"` });
      seen.add(c.name);
    });
  });
export type StatusPageSpec = z.output<typeof statusPageSpecSchema>;
export type StatusPageInput = z.input<typeof statusPageSpecSchema>;

/** A stored page as the admin routes answer it. */
export type StatusPageDefinition = StatusPageSpec & {
  id: string;
  version: number;
  createdAt: string;
  updatedAt: string;
};

// ── over the bus (gateway → sync-orchestrator), the alert configuration's envelope ──

export enum StatusPageRpcMethod {
  Create = 'status-pages.create',
  Replace = 'status-pages.replace',
  Patch = 'status-pages.patch',
  Delete = 'status-pages.delete',
  List = 'status-pages.list',
  Get = 'status-pages.get',
}

const expectedVersion = z.number().int().nonnegative().max(2_147_483_647).optional();
export const statusPageRpcParams = {
  [StatusPageRpcMethod.Create]: z.strictObject({ actor: actorSchema, body: z.unknown() }),
  [StatusPageRpcMethod.Replace]: z.strictObject({
    actor: actorSchema,
    id: statusPageIdSchema,
    body: z.unknown(),
    expectedVersion,
  }),
  /** Top-level merge; a `null` member removes the field (its default applies). */
  [StatusPageRpcMethod.Patch]: z.strictObject({
    actor: actorSchema,
    id: statusPageIdSchema,
    patch: z.record(z.string(), z.unknown()),
    expectedVersion,
  }),
  [StatusPageRpcMethod.Delete]: z.strictObject({ actor: actorSchema, id: statusPageIdSchema, expectedVersion }),
  [StatusPageRpcMethod.List]: z.strictObject({
    limit: z.number().int().min(1).max(1000).default(100),
    cursor: storableText(256).optional(),
  }),
  [StatusPageRpcMethod.Get]: z.strictObject({ id: statusPageIdSchema }),
} as const satisfies Record<StatusPageRpcMethod, z.ZodType>;

export type StatusPageRpcParams<M extends StatusPageRpcMethod> = z.input<(typeof statusPageRpcParams)[M]>;

export interface StatusPageRpcResults {
  [StatusPageRpcMethod.Create]: { page: StatusPageDefinition } & WriteResult;
  [StatusPageRpcMethod.Replace]: { page: StatusPageDefinition } & WriteResult;
  [StatusPageRpcMethod.Patch]: { page: StatusPageDefinition } & WriteResult;
  [StatusPageRpcMethod.Delete]: WriteResult;
  [StatusPageRpcMethod.List]: Page<StatusPageDefinition>;
  [StatusPageRpcMethod.Get]: { page: StatusPageDefinition };
}

// ── the public view ──

/** A component's state for visitors: no raw target status, reasons or locations. */
export const PUBLIC_COMPONENT_STATES = ['operational', 'degraded', 'outage', 'maintenance', 'unknown'] as const;
export const publicComponentStateSchema = z.enum(PUBLIC_COMPONENT_STATES);
export type PublicComponentState = z.infer<typeof publicComponentStateSchema>;

export const publicUptimeDaySchema = z.object({
  /** The UTC day, `YYYY-MM-DD`. */
  date: z.string(),
  /** Share of the known time that was up (degraded counts as up), 0–1; null: no data that day. */
  uptime: z.number().min(0).max(1).nullable(),
  /** Worst state seen that day; `unknown` when there was no data. */
  state: publicComponentStateSchema,
});
export type PublicUptimeDay = z.infer<typeof publicUptimeDaySchema>;

export const publicStatusComponentSchema = z.object({
  name: z.string(),
  description: z.string(),
  state: publicComponentStateSchema,
  /** Over the whole window; null with no data at all. */
  uptime: z.number().min(0).max(1).nullable(),
  days: z.array(publicUptimeDaySchema),
});
export type PublicStatusComponent = z.infer<typeof publicStatusComponentSchema>;

export const publicIncidentSchema = z.object({
  /** The component's display name. */
  component: z.string(),
  state: z.enum(['degraded', 'outage']),
  startedAt: z.iso.datetime(),
  /** null: still going on. */
  endedAt: z.iso.datetime().nullable(),
});
export type PublicIncident = z.infer<typeof publicIncidentSchema>;

export const publicAnnouncementSchema = z.object({
  title: z.string(),
  body: z.string(),
  severity: z.enum(ANNOUNCEMENT_SEVERITIES),
  startsAt: z.string(),
  endsAt: z.string().nullable(),
  /** At `generatedAt`: before startsAt, between, from endsAt on. The list: ongoing, then scheduled, then ended. */
  state: z.enum(['scheduled', 'ongoing', 'ended']),
});

/** `GET /api/v1/public/status-pages/{slug}`: no authentication, cached briefly. */
export const publicStatusPageSchema = z.object({
  slug: z.string(),
  title: z.string(),
  description: z.string(),
  /**
   * The worst state among the components whose state is known (`unknown` ranks nowhere here): a component selecting
   * no target (all deleted) or one that is `unknown` does not make the whole page `unknown` while others are known.
   * `unknown` only when no component's state is.
   */
  state: publicComponentStateSchema,
  /**
   * Components that select targets but whose state is `unknown` (a target STALE, or with no result yet): the hint under
   * a headline that leaves them out. Absent from gateways before it: read as 0.
   */
  unknownComponents: z.number().int().min(0).optional(),
  components: z.array(publicStatusComponentSchema),
  incidents: z.array(publicIncidentSchema),
  announcements: z.array(publicAnnouncementSchema),
  days: z.number().int(),
  generatedAt: z.iso.datetime(),
});
export type PublicStatusPage = z.infer<typeof publicStatusPageSchema>;
