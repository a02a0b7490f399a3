import type { PublicComponentState, PublicStatusPage } from '@fleetwatch/contracts';
import { announcementWhen } from './announcement-text';

// One status page as visitors see it (the public route, and the editor's preview). Every text is
// the page author's and is rendered as text (React escapes it); nothing here builds HTML.

const STATE_TEXT: Record<PublicComponentState, string> = {
  operational: 'Operational',
  degraded: 'Degraded',
  outage: 'Outage',
  maintenance: 'Maintenance',
  unknown: 'No data',
};

const PAGE_TEXT: Record<PublicComponentState, string> = {
  operational: 'All systems operational',
  degraded: 'Some systems degraded',
  outage: 'Some systems are down',
  maintenance: 'Under maintenance',
  unknown: 'Status not known yet',
};

/**
 * Under a headline that leaves out components whose state is not known (a target STALE): how many there are. The
 * headline is the worst known state; it no longer reads "not known" for the whole page over one such component.
 */
export const unknownHint = (n: number) => `Status of ${n} component${n === 1 ? '' : 's'} not known right now`;

/** A maintenance day's bar: planned work (a maintenance window, or a paused check) is not counted against uptime. */
const MAINTENANCE_NOTE = ', planned: not counted in uptime';

/**
 * Rounded down to 0.01 % (any downtime keeps it below 100.00 %). The tiny allowance is for the float product: 0.0029 *
 * 10000 is 28.999…, and a share of exactly 0.29 % read 0.28 %; real downtime (1 ms of 90 days of 200 targets) is
 * thousands of times more.
 */
export const uptimeText = (u: number | null) =>
  u === null ? 'no data' : `${(Math.floor(u * 10000 + 1e-9) / 100).toFixed(2)} %`;

function when(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function duration(start: string, end: string | null, now: number): string {
  const ms = (end ? Date.parse(end) : now) - Date.parse(start);
  const m = Math.max(1, Math.round(ms / 60_000));
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} days`;
}

export function StatusPageView({ page, now = Date.now() }: { page: PublicStatusPage; now?: number }) {
  return (
    <div className="sp-page">
      <header className="sp-header">
        <h1 className="sp-title">{page.title}</h1>
        {page.description && <p className="sp-description">{page.description}</p>}
        <p className={`sp-overall sp-state--${page.state}`} role="status">
          {PAGE_TEXT[page.state]}
        </p>
        {page.state !== 'unknown' && (page.unknownComponents ?? 0) > 0 && (
          <p className="sp-muted sp-overall__hint">{unknownHint(page.unknownComponents ?? 0)}</p>
        )}
      </header>

      {page.announcements.length > 0 && (
        <section className="sp-section" aria-labelledby="sp-announcements">
          <h2 id="sp-announcements">Announcements</h2>
          <ul className="sp-list">
            {page.announcements.map((a, i) => (
              <li key={i} className={`sp-announcement sp-severity--${a.severity}`}>
                <h3 className="sp-announcement__title">{a.title}</h3>
                <p className="sp-muted">
                  {a.severity} · {announcementWhen(a)}
                </p>
                {a.body && <p className="sp-announcement__body">{a.body}</p>}
              </li>
            ))}
          </ul>
        </section>
      )}

      <section className="sp-section" aria-labelledby="sp-components">
        <h2 id="sp-components">Components</h2>
        <ul className="sp-list">
          {page.components.map((c) => (
            <li key={c.name} className="sp-component">
              <div className="sp-component__head">
                <span className="sp-component__name">{c.name}</span>
                <span className={`sp-badge sp-state--${c.state}`}>{STATE_TEXT[c.state]}</span>
              </div>
              {c.description && <p className="sp-muted">{c.description}</p>}
              <ol className="sp-bars" aria-label={`${c.name}: daily uptime, last ${page.days} days`}>
                {c.days.map((d) => (
                  <li
                    key={d.date}
                    className={`sp-bar sp-state--${d.state}`}
                    title={`${d.date}: ${uptimeText(d.uptime)} (${STATE_TEXT[d.state]}${d.state === 'maintenance' ? MAINTENANCE_NOTE : ''})`}
                  />
                ))}
              </ol>
              <p className="sp-bars__legend sp-muted">
                <span>{page.days} days ago</span>
                <span>uptime {uptimeText(c.uptime)}</span>
                <span>today</span>
              </p>
            </li>
          ))}
        </ul>
      </section>

      <section className="sp-section" aria-labelledby="sp-incidents">
        <h2 id="sp-incidents">Incidents</h2>
        {page.incidents.length === 0 ? (
          <p className="sp-muted">No incidents in the last {page.days} days.</p>
        ) : (
          <ul className="sp-list">
            {page.incidents.map((i) => (
              <li key={`${i.component}-${i.startedAt}`} className="sp-incident">
                <span className={`sp-badge sp-state--${i.state}`}>{STATE_TEXT[i.state]}</span>{' '}
                <strong>{i.component}</strong>{' '}
                <span className="sp-muted">
                  {when(i.startedAt)} – {i.endedAt ? when(i.endedAt) : 'ongoing'} (
                  {duration(i.startedAt, i.endedAt, now)})
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <p className="sp-muted sp-footer">Updated {when(page.generatedAt)} · times in your time zone, days in UTC</p>
    </div>
  );
}
