import { truncateText } from '@fleetwatch/contracts';

// Text helpers of the channel formats: every value that reaches a receiver is bounded and escaped for the
// markup that receiver reads, so a target or label named like markup shows as the text it is.

/** At most `max` characters, an ellipsis marking a cut (never splitting a surrogate pair). */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${truncateText(text, max - 1)}…`;
}

/** One line: line breaks and other control characters become spaces (subjects, headers, titles). */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').trim();
}

/**
 * `escape(text)` in at most `max` characters: cut before escaping, at a whole character (an escape sequence and a
 * surrogate pair stay whole), an ellipsis marking a cut. Clipping first and escaping after let "&…" grow five-fold
 * past the limit; clipping the escaped text could cut "&amp;" into "&am".
 */
export function clipEscaped(text: string, max: number, escape: (text: string) => string): string {
  const whole = escape(text);
  if (whole.length <= max) return whole;
  let end = 0;
  let size = 0;
  for (const ch of text) {
    const n = escape(ch).length;
    if (size + n > max - 1) break;
    size += n;
    end += ch.length;
  }
  return `${escape(text.slice(0, end))}…`;
}

const HTML: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML[c]);
}

/** Slack's mrkdwn control characters (`<!channel>`, `<url|text>` links): the three it asks to escape. */
export function escapeSlack(text: string): string {
  return text.replace(/[&<>]/g, (c) => HTML[c]);
}

/**
 * Channel-wide mentions written out (`@channel`, `@here`, `@all`, `@everyone`, any case) with a WORD JOINER (U+2060,
 * invisible) after the `@`: Mattermost and Rocket.Chat notify a whole channel for them in a Slack-compatible message's
 * `text` (Slack for `@channel` with link_names), and a label value or target name written so must not page everyone.
 * Other text — `bob@example.com`, `@allstate`, and an address whose domain starts so (`ops@here.com`: an `@` after a
 * letter or digit starts no mention; a joiner in it would break its link and a copy of it) — is left as it is.
 */
export function defuseMentions(text: string): string {
  return text.replace(/(?<![\p{L}\p{N}])@(?=(?:channel|here|all|everyone)(?![\p{L}\p{N}_]))/giu, '@\u2060');
}

/**
 * Markdown that Teams' TextBlocks read (emphasis, links, lists): backslash-escaped so a label value cannot
 * make a link or change the card's look.
 */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]~]/g, '\\$&');
}

/** UTF-8 size of a text. */
export const bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

/** "key=value, …" of labels, skipping those named. */
export function labelList(labels: Readonly<Record<string, string>>, skip: readonly string[] = []): string {
  return Object.entries(labels)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}
