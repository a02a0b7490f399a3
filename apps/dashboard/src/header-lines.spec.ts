import { describe, expect, it } from 'vitest';
import { parseHeaderLines } from './header-lines';

describe('parseHeaderLines', () => {
  it.each([
    ['nothing', '', {}],
    ['blank lines skipped, names and values trimmed', '\n  X-A :  1 \n\n', { 'X-A': '1' }],
    ['a value holding colons keeps them', 'Link: <https://a.example:8443/x>', { Link: '<https://a.example:8443/x>' }],
    ['a line without a colon is a name with an empty value', 'X-Flag', { 'X-Flag': '' }],
    ['a later line of the same name wins', 'X-A: 1\nX-A: 2', { 'X-A': '2' }],
  ] as const)('%s', (_, text, headers) => {
    expect(parseHeaderLines(text)).toEqual(headers);
  });
});
