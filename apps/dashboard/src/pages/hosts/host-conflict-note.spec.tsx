import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { HostConflictMarker, HostConflictNote } from './host-conflict-note';

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

describe('HostConflictMarker (the hosts list: a host id two collectors report)', () => {
  it('marks the row with how many reporters, named for screen readers', () => {
    const html = renderToStaticMarkup(
      <HostConflictMarker conflict={{ reporters: 3, since: '2026-12-07T07:00:00.000Z' }} />,
    );
    expect(html).toContain('class="fw-host-conflict"');
    expect(html).toContain('3 collectors');
    expect(html).toContain('aria-label="3 collectors report this host id at once');
  });

  it.each([null, undefined])('no marker for %p (one reporter, or a gateway of before)', (conflict) => {
    expect(renderToStaticMarkup(<HostConflictMarker conflict={conflict} />)).toBe('');
  });
});
