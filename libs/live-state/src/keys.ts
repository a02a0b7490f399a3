/*
 * Key families of live state (SPEC §4). Every key lives under the site's
 * prefix (ioredis keyPrefix). Only this lib knows these layouts.
 *
 *   t:{targetId}              HASH   target summary: kind, name, status (consensus), since, lastSeen,
 *                                    lastLatencyMs, lifecycle, instanceKind (pushed instances: container, pod, …;
 *                                    absent for others and for instances not updated since it was kept), tags
 *                                    (JSON), labels (JSON), seq
 *                                    — or, for a deleted check, only `deleted` (a marker that keeps late
 *                                    writes out; expires after a day)
 *   tl:{targetId}             HASH   location → JSON LocationRecord (a family of its own: layout 2 kept it at
 *                                    t:{targetId}:loc, which is also target `{targetId}:loc`'s summary — ids may
 *                                    hold ":" — so one target's locations overwrote the other's fields)
 *   idx:all                   ZSET   every target id (score 0: lexical order, cursor paging)
 *   idx:status:{STATUS}       SET    target ids by consensus status
 *   idx:kind:{kind}           SET    target ids by kind
 *   idx:ikind:{instanceKind}  SET    pushed instances' ids by their own kind (container, pod, process, service, job)
 *   idx:tag:{tag}             SET    target ids by tag
 *   idx:loc:{location}        SET    target ids reporting from a location
 *   idx:since                 ZSET   target ids scored by `since` (epoch ms of the last status change; none while null)
 *   live:built:3              STRING set once live state was rebuilt whole from Postgres (or found whole at
 *                                    boot): a flush removes it, so the aggregator notices the flush even when a
 *                                    projection writes a target before its next look. The suffix is the layout's
 *                                    version: a new layout is rebuilt once on upgrade (2: idx:since; 3: locations
 *                                    in tl:{targetId}; where an older mark is, the old t:*:loc hashes and the
 *                                    marks are removed before that rebuild)
 *   deadlines                 ZSET   "{targetId}\u0000{location}" scored by deadline (epoch ms)
 *                                    (a cache of target_location_states.deadline_at in Postgres)
 *   host:{hostId}:metrics     HASH   a host's latest sample: at (epoch ms), json (the host.metrics payload);
 *                                    written only forward in time; the host's status is its target t:host:{hostId};
 *                                    a retired host's keeps only `at` (its retirement) until it expires
 *   host:{hostId}:conflict    STRING a host id two collectors report at once (the aggregator's mark): JSON
 *                                    {reporters, since (ISO), owner (the aggregator instance that holds it)};
 *                                    written when the mark is raised, changes or clears (and re-written by its
 *                                    owner every minute, "unless another owner's": a flushed one comes back),
 *                                    removed when the host is retired; expires 5 minutes after its last write
 *                                    (an owner gone for good). Never in host:{hostId}:metrics' sample
 *   cm:{targetId}             HASH   a check's latest service-collector figures per location:
 *                                    `at:{location}` (epoch ms of the result), `m:{location}` (JSON metrics);
 *                                    written only forward in time; expires when results stop
 *   rate:{name}               HASH   a token bucket shared by replicas: tokens, at (epoch ms); expires when full
 *   ingress:control           HASH   ingest replicas' pause/resume: stamp (ordering of the command in force),
 *                                    record (JSON IngressControlRecord); never expires
 *   replicas:{service}        ZSET   live replicas of a service (member id) scored by last heartbeat (epoch ms)
 *   channel live:status       PUBSUB status-changed fan-out to every gateway replica
 *   channel ingress:control   PUBSUB the ingress record, on each change, to every ingest replica
 */
export const LiveKeys = {
  target: (id: string) => `t:${id}`,
  targetLocations: (id: string) => `tl:${id}`,
  all: 'idx:all',
  byStatus: (status: string) => `idx:status:${status}`,
  byKind: (kind: string) => `idx:kind:${kind}`,
  byInstanceKind: (instanceKind: string) => `idx:ikind:${instanceKind}`,
  byTag: (tag: string) => `idx:tag:${tag}`,
  byLocation: (location: string) => `idx:loc:${location}`,
  /** Targets scored by `since` (epoch ms of their last status change): the latest changes first by ZREVRANGE. */
  bySince: 'idx:since',
  deadlines: 'deadlines',
  /** Layouts 1–2's locations hash of a target (`t:{targetId}:loc`), removed by the layout-3 rebuild: a SCAN pattern. */
  legacyLocationsPattern: 't:*:loc',
  /** Marks of layouts 1 and 2: where one is, their location hashes may be (removed, with the marks, on upgrade). */
  legacyBuilt: ['live:built', 'live:built:2'] as readonly string[],
  built: 'live:built:3',
  hostMetrics: (hostId: string) => `host:${hostId}:metrics`,
  /** A host id two collectors report at once: the aggregator's mark (never a host's metrics key: other suffix). */
  hostConflict: (hostId: string) => `host:${hostId}:conflict`,
  checkMetrics: (targetId: string) => `cm:${targetId}`,
  rateBucket: (name: string) => `rate:${name}`,
  replicas: (service: string) => `replicas:${service}`,
  statusChannel: 'live:status',
  ingressControl: 'ingress:control',
  ingressControlChannel: 'ingress:control',
} as const;

export const DEADLINE_SEPARATOR = '\u0000';
