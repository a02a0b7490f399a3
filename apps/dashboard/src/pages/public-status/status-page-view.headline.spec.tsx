import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { PublicStatusPage } from '@fleetwatch/contracts';
import { StatusPageView } from './status-page-view';

// The gateway's headline is the worst state among the components whose state is known; one whose state is not known
// (a target STALE) is counted in `unknownComponents`, which the page says under the headline — it said "Status not
// known yet" for the whole page while every other component was up.

const component = (name: string, state: PublicStatusPage['state']) => ({
  name,
  description: '',
  state,
  uptime: null,
  days: [{ date: '2026-12-07', uptime: null, state }],
});
const page = (over: Partial<PublicStatusPage>): PublicStatusPage => ({
  slug: 'acme',
  title: 'Acme',
  description: '',
  state: 'operational',
  unknownComponents: 0,
  components: [component('API', 'operational'), component('Queue', 'unknown')],
  incidents: [],
  announcements: [],
  days: 1,
  generatedAt: '2026-12-07T12:00:00.000Z',
  ...over,
});
const html = (p: PublicStatusPage) => renderToStaticMarkup(<StatusPageView page={p} now={Date.parse(p.generatedAt)} />);

describe('StatusPageView: the headline and components whose state is not known', () => {
  it('the worst known state heads the page, with a hint naming how many components are not known', () => {
    const out = html(page({ unknownComponents: 1 }));
    expect(out).toContain('<p class="sp-overall sp-state--operational" role="status">All systems operational</p>');
    expect(out).toContain('<p class="sp-muted sp-overall__hint">Status of 1 component not known right now</p>');
    expect(out).not.toContain('Status not known yet');
    // The component itself still says so.
    expect(out).toContain('<span class="sp-badge sp-state--unknown">No data</span>');
    expect(html(page({ state: 'outage', unknownComponents: 2 }))).toContain(
      'Status of 2 components not known right now',
    );
  });

  it('no hint when every component selecting targets is known (one with none left says "No data" only), or from an older gateway', () => {
    expect(html(page({}))).not.toContain('sp-overall__hint');
    expect(html(page({ unknownComponents: undefined }))).not.toContain('sp-overall__hint');
  });

  it('nothing known at all: "Status not known yet", no hint besides it', () => {
    const out = html(page({ state: 'unknown', unknownComponents: 1, components: [component('Queue', 'unknown')] }));
    expect(out).toContain('<p class="sp-overall sp-state--unknown" role="status">Status not known yet</p>');
    expect(out).not.toContain('sp-overall__hint');
  });
});
