import { pingBodyText } from './ping-charset';

describe('pingBodyText', () => {
  it('decodes the charset named', () => {
    expect(pingBodyText(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x80]), 'iso-8859-1')).toBe('café €');
    expect(pingBodyText(Buffer.from('disk full ✓', 'utf16le'), 'utf-16le')).toBe('disk full ✓');
  });

  it('none named: UTF-8 from the bytes as before, a BOM kept as sent', () => {
    expect(pingBodyText(Buffer.from('\uFEFFbackup ✓'), undefined)).toBe('\uFEFFbackup ✓');
  });
});
