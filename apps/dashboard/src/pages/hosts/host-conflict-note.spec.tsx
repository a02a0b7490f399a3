import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { HostConflictNote } from './host-conflict-note';

describe('HostConflictNote (a host id two collectors report)', () => {
  it('warns with how many reporters and since when', () => {
    const html = renderToStaticMarkup(
      <HostConflictNote conflict={{ reporters: 2, since: '2026-12-07T07:00:00.000Z' }} />,
    );
    expect(html).toContain('role="alert"');
    expect(html).toContain('2 collectors report this host id at once');
    expect(html).toContain('dateTime="2026-12-07T07:00:00.000Z"');
  });

  it.each([null, undefined])('says nothing for %p (one reporter, or a gateway of before)', (conflict) => {
    expect(renderToStaticMarkup(<HostConflictNote conflict={conflict} />)).toBe('');
  });
});
