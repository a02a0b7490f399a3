// Parameter helpers for the batched (unnest) statements of the history repositories.

/** Postgres text and jsonb cannot hold NUL: strip it rather than fail a whole batch. */
export function clean(value: string): string {
  return value.includes('\u0000') ? value.replaceAll('\u0000', '') : value;
}

export function cleanOrNull(value: string | null | undefined): string | null {
  return value === null || value === undefined ? null : clean(value);
}

/** JSON text for a jsonb parameter, NUL-free (`\u0000` escapes are refused by jsonb too). */
export function jsonOrNull(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return JSON.stringify(value).replaceAll('\\u0000', '');
}

/** Epoch ms → ISO string for a timestamptz parameter. */
export function iso(epochMs: number | null): string | null {
  return epochMs === null ? null : new Date(epochMs).toISOString();
}

/** `extract(epoch …) * 1000` read back as float8 → integral epoch ms. */
export function ms(value: number | string | null): number | null {
  return value === null ? null : Math.round(Number(value));
}
