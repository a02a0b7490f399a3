import { renderToStaticMarkup } from 'react-dom/server';
import { TargetStatus } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import { relativeTime, StatusBadge } from './status-badge';

describe('StatusBadge', () => {
  it('renders the status with its colour', () => {
    const html = renderToStaticMarkup(<StatusBadge status={TargetStatus.Down} />);
    expect(html).toContain('data-status="DOWN"');
    expect(html).toContain('#d64545');
  });
  it('formats relative times', () => {
    const now = Date.UTC(2026, 0, 1, 12);
    expect(relativeTime(null, now)).toBe('never');
    expect(relativeTime(new Date(now - 5000).toISOString(), now)).toBe('5 s ago');
    expect(relativeTime(new Date(now - 7200_000).toISOString(), now)).toBe('2 h ago');
  });
});
