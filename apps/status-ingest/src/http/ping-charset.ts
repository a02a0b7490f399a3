import { decodeText } from '@fleetwatch/contracts';

/**
 * A ping body's text in the charset its Content-Type named (`text/plain; charset=iso-8859-1`, `utf-16le`,
 * `shift_jis`…): a job's log in another charset was kept as UTF-8 read from its bytes, every accented or CJK character
 * a U+FFFD. With no charset (or where the body is this edge's own note about its content coding) it is read as UTF-8
 * as before, a byte-order mark kept as sent; a label no decoder knows is read as UTF-8 too.
 */
export function pingBodyText(bytes: Buffer, charset: string | undefined): string {
  return charset === undefined ? bytes.toString('utf8') : decodeText(bytes, charset);
}
