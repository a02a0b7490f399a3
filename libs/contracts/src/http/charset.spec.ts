import { charsetOf, decodeText } from './charset';

describe('charsetOf', () => {
  it.each([
    ['text/plain; charset=ISO-8859-1', 'iso-8859-1'],
    ['text/plain;charset="utf-16le"', 'utf-16le'],
    ['text/plain; format=flowed; Charset = Shift_JIS ; x=1', 'shift_jis'],
    ['text/plain', undefined],
    ['text/plain; charset', undefined],
    ['text/plain; charset=', undefined],
    [undefined, undefined],
  ])('%j → %j', (header, charset) => expect(charsetOf(header)).toBe(charset));
});

describe('decodeText', () => {
  it('decodes the charset named', () => {
    expect(decodeText(Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'iso-8859-1')).toBe('café');
    expect(decodeText(Buffer.from('disk full ✓', 'utf16le'), 'utf-16le')).toBe('disk full ✓');
    expect(decodeText(Buffer.from([0x82, 0xa0]), 'shift_jis')).toBe('あ');
  });

  it('windows-1252 and the labels the standard gives it map 0x80–0x9F (Node 20 reads them as C1 controls)', () => {
    expect(decodeText(Buffer.from([0x80, 0x20, 0x35, 0x93, 0x94]), 'windows-1252')).toBe('€ 5“”');
    expect(decodeText(Buffer.from([0x80, 0xe9, 0x81]), 'iso-8859-1')).toBe('€é\u0081');
    expect(decodeText(Buffer.from([0x99]), 'latin1')).toBe('™');
  });

  it('UTF-8 when none is named or no decoder knows the label; a BOM dropped', () => {
    const bytes = Buffer.from('\uFEFFbackup ✓');
    expect(decodeText(bytes, undefined)).toBe('backup ✓');
    expect(decodeText(bytes, 'no-such-charset')).toBe('backup ✓');
  });

  it('bytes the charset cannot map become U+FFFD; with stream, a character cut at the end is left out', () => {
    expect(decodeText(Buffer.from([0x61, 0x62, 0x63]), 'utf-16le')).toBe('\u6261\uFFFD');
    expect(decodeText(Buffer.from([0x61, 0xe2, 0x9c]), 'utf-8', { stream: true })).toBe('a');
  });
});
