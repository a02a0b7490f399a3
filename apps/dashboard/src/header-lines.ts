/**
 * HTTP headers as the forms edit them: `Name: value` lines, parsed into a record (blank lines skipped; a line
 * without `:` is a name with an empty value). The check and channel forms use it.
 */
export function parseHeaderLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf(':');
    if (at < 0) out[line] = '';
    else out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}
