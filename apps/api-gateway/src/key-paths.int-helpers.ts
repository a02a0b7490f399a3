// Shared by the property int-specs (adversarial-inputs, config/config-import): the places of a JSON value, as key paths.
// Imported by tests only.

/** Every place (scalar or collection) of `value`, as a key path; the value itself is the empty path. */
export function placesOf(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(value)) return [path, ...value.flatMap((v, i) => placesOf(v, [...path, i]))];
  if (value !== null && typeof value === 'object')
    return [path, ...Object.entries(value).flatMap(([k, v]) => placesOf(v, [...path, k]))];
  return [path];
}

/** What is at `path` in `value` (undefined where the path leads nowhere). */
export function at(value: unknown, path: ReadonlyArray<string | number>): unknown {
  return path.reduce<unknown>((v, k) => (v === null || v === undefined ? undefined : (v as never)[k]), value);
}
