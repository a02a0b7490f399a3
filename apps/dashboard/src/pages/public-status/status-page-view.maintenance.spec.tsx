import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { PublicStatusPage } from '@fleetwatch/contracts';
import { StatusPageView } from './status-page-view';

// A page whose target is DOWN under a planned maintenance window: the gateway says "maintenance" for the page, the
// component and the day's bar, and lists no incident for it. The page must say so, in its own colour, not "down".

const page = (over: Partial<PublicStatusPage> = {}): PublicStatusPage => ({
  slug: 'acme',
  title: 'Acme',
  description: '',
  state: 'maintenance',
  components: [
    {
      name: 'Database',
      description: '',
      state: 'maintenance',
      uptime: 1,
      days: [
        { date: '2026-12-06', uptime: 1, state: 'operational' },
        { date: '2026-12-07', uptime: 1, state: 'maintenance' },
      ],
    },
  ],
  incidents: [],
  announcements: [],
  days: 2,
  generatedAt: '2026-12-07T12:00:00.000Z',
  ...over,
});

describe('StatusPageView: planned maintenance', () => {
  const html = renderToStaticMarkup(<StatusPageView page={page()} now={Date.parse('2026-12-07T12:00:00Z')} />);

  it('the headline says maintenance is under way, in the maintenance colour — not an outage', () => {
    expect(html).toMatch(/<p class="sp-overall sp-state--maintenance" role="status">Under maintenance<\/p>/);
    expect(html).not.toContain('Some systems are down');
    expect(html).not.toContain('sp-state--outage');
  });

  it('the component reads Maintenance and its day bar is a maintenance bar, its uptime not counted against', () => {
    expect(html).toContain('<span class="sp-badge sp-state--maintenance">Maintenance</span>');
    expect(html).toContain(
      '<li class="sp-bar sp-state--maintenance" title="2026-12-07: 100.00 % (Maintenance, planned: not counted in uptime)">',
    );
    expect(html).toContain('<li class="sp-bar sp-state--operational" title="2026-12-06: 100.00 % (Operational)">');
    expect(html).toContain('uptime 100.00 %');
    expect(html).toContain('No incidents in the last 2 days.');
  });

  it('an outage elsewhere on the page still heads it', () => {
    const mixed = renderToStaticMarkup(<StatusPageView page={page({ state: 'outage' })} />);
    expect(mixed).toContain('Some systems are down');
  });
});
