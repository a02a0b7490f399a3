/** Text that is ASCII already folds by lower-casing alone (the common case: ids, hostnames). */
const NON_ASCII = /[^\p{ASCII}]/u;

/**
 * A text as free-text searches compare it: compatibility-decomposed (NFKD: `ﬁ` → `fi`, full-width letters → ASCII),
 * without combining marks (`é` → `e`, `ü` → `u`), case-folded (`ß` and `ẞ` → `ss`, `Σ` and `ς` → `σ`). `Zürich`, `zurich` and
 * `ZURICH` fold alike, as do `Straße` and `STRASSE`. The gateway's searches and the dashboard's share it, so a filter
 * the page applies to the rows it holds takes what the server would.
 */
export function searchFold(text: string): string {
  if (!NON_ASCII.test(text)) return text.toLowerCase();
  // Lower, upper, lower: ẞ → ß → SS → ss; then every sigma alike (lower-casing writes ς at a word's end, so a
  // prefix typed as θεσ would miss Θεσσαλονίκη).
  return text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .toUpperCase()
    .toLowerCase()
    .replace(/ς/g, 'σ');
}

/** Whether `needle` (already folded, non-empty) is part of `text` once folded. */
export function foldedIncludes(text: string, needle: string): boolean {
  return searchFold(text).includes(needle);
}
