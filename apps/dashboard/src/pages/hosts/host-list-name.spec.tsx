import { renderToStaticMarkup } from 'react-dom/server';
import { MemoryRouter } from 'react-router';
import { describe, expect, it } from 'vitest';
import { HostListName } from './host-list-name';

const render = (conflict: { reporters: number; since: string } | null | undefined) =>
  renderToStaticMarkup(
    <MemoryRouter>
      <HostListName host={{ id: 'web 1', name: 'web 1', conflict }} />
    </MemoryRouter>,
  );

describe('HostListName (a row of the hosts list)', () => {
  it('links the host and marks a host id two collectors report', () => {
    const html = render({ reporters: 2, since: '2026-12-07T07:00:00.000Z' });
    expect(html).toContain('href="/hosts/web%201"');
    expect(html).toContain('class="fw-host-conflict"');
    expect(html).toContain('2 collectors');
  });

  it.each([null, undefined])('no marker for %p', (conflict) => {
    const html = render(conflict);
    expect(html).toContain('href="/hosts/web%201"');
    expect(html).not.toContain('fw-host-conflict');
  });
});
