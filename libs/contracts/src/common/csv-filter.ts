import { z } from 'zod';

/**
 * A comma-separated filter of enum values, in any case (`status=down,partial`, `kind=Check`): each is read as the
 * value it names (`DOWN`, `check`); anything else is a 400 naming the values allowed. Blank entries are skipped.
 */
export function csvOf<E extends Record<string, string>>(values: E) {
  const canonical = new Map(Object.values(values).map((v) => [v.toLowerCase(), v]));
  return z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean)
        .map((v) => canonical.get(v.toLowerCase()) ?? v),
    )
    .pipe(z.array(z.enum(values)));
}
