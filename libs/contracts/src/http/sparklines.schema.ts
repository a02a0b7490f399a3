import { z } from 'zod';
import { storableText } from '../common/store-safe';

// `GET /api/v1/targets/sparklines`: the last hour of many targets at once, minute by minute, for
// the sparkline in each row of the targets page (issue 17). The page asks for the rows in view.

/** The minutes a sparkline covers, the current (still filling) minute last. */
export const SPARKLINE_MINUTES = 60;
/** Targets per request (the page asks for the rows in view, in blocks). */
export const SPARKLINE_MAX_TARGETS = 100;

export const sparklinesQuerySchema = z.strictObject({
  /** Repeated: `?id=check:…&id=instance:web-1`. */
  id: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .pipe(
      z
        .array(storableText(512, 1))
        .min(1)
        .max(SPARKLINE_MAX_TARGETS, `at most ${SPARKLINE_MAX_TARGETS} ids per request`),
    ),
});
export type SparklinesQuery = z.infer<typeof sparklinesQuerySchema>;

const perMinute = z.array(z.number().nullable()).length(SPARKLINE_MINUTES);

export const targetSparklineSchema = z.object({
  id: z.string(),
  /** Share of good samples per minute over every location, 0–1; null: no sample that minute. */
  availability: perMinute,
  /** Mean latency per minute over every location's samples that had one (checks); null: none. */
  latencyMs: perMinute,
});
export type TargetSparkline = z.infer<typeof targetSparklineSchema>;

export const sparklinesResponseSchema = z.object({
  /** The first minute's start; minute i starts `i` minutes after it. */
  from: z.iso.datetime(),
  minutes: z.literal(SPARKLINE_MINUTES),
  /** One per requested id, in the order asked (duplicates once); a target without history has only nulls. */
  targets: z.array(targetSparklineSchema),
});
export type SparklinesResponse = z.infer<typeof sparklinesResponseSchema>;
