/** The `charset` parameter of a Content-Type header, lower-cased (quoted or not); undefined when it has none. */
export function charsetOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const m = /;\s*charset\s*=\s*(?:"([^"]{1,64})"|([^\s;"]{1,64}))/i.exec(contentType.slice(0, 1024));
  const label = (m?.[1] ?? m?.[2])?.trim().toLowerCase();
  return label ? label : undefined;
}

/**
 * Bytes as text in the charset `label` names (any label of the WHATWG Encoding Standard: `iso-8859-1`, `utf-16le`,
 * `shift_jis`…), UTF-8 when it names none or one no decoder knows; a byte-order mark is dropped, and bytes the charset
 * cannot map become U+FFFD. `stream`: the bytes end mid-text (a read cap), so a character cut there is left out rather
 * than shown as U+FFFD.
 *
 * windows-1252 (which the standard also names `iso-8859-1`, `latin1`, `us-ascii`, `ascii`) is mapped here: Node 20's
 * TextDecoder reads it as ISO-8859-1, 0x80–0x9F as C1 controls — the € of a Latin-1-labelled page was U+0080.
 */
export function decodeText(bytes: Uint8Array, label: string | undefined, options: { stream?: boolean } = {}): string {
  const decoder = decoderFor(label);
  return decoder.encoding === 'windows-1252' ? windows1252(bytes) : decoder.decode(bytes, options);
}

function decoderFor(label: string | undefined) {
  try {
    return new TextDecoder(label ?? 'utf-8');
  } catch {
    return new TextDecoder('utf-8');
  }
}

function windows1252(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    const part = bytes.subarray(i, i + 8192);
    out += String.fromCharCode(
      ...Array.from(part, (b) => (b >= 0x80 && b <= 0x9f ? (CP1252_80_9F[b - 0x80] ?? b) : b)),
    );
  }
  return out;
}

/** 0x80–0x9F of windows-1252 (the five bytes it leaves unassigned stay the C1 code points, as the standard says). */
const CP1252_80_9F = [
  0x20ac, 0x81, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8d, 0x017d,
  0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x9d,
  0x017e, 0x0178,
];
