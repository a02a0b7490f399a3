import { NavLink } from 'react-router';
import './alerts.css';

const SECTIONS = [
  ['/alerts', 'Alerts'],
  ['/alerts/history', 'Alert history'],
  ['/alerts/silences', 'Silences'],
  ['/alerts/maintenance', 'Maintenance'],
  ['/alerts/rules', 'Rules'],
  ['/alerts/channels', 'Channels'],
  ['/alerts/deliveries', 'Delivery log'],
] as const;

/** The alerting pages' own navigation (under the page heading). */
export function AlertsNav() {
  return (
    <nav className="fw-alerts-nav" aria-label="Alerting">
      {SECTIONS.map(([to, label]) => (
        <NavLink key={to} to={to} end={to === '/alerts'}>
          {label}
        </NavLink>
      ))}
    </nav>
  );
}
