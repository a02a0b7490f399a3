import { renderToStaticMarkup } from 'react-dom/server';
import { TargetStatus } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import { relativeTime, StatusBadge } from './status-badge';

describe('StatusBadge', () => {
  it('renders the status as a themed class, with no inline style (a strict CSP refuses those)', () => {
    const html = renderToStaticMarkup(<StatusBadge status={TargetStatus.Down} />);
    expect(html).toBe('<span class="fw-status" data-status="DOWN">DOWN</span>');
  });
  it.each([
    [null, 'never'],
    [-5_000, '5 s ago'],
    [-59_000, '59 s ago'],
    [-60_000, '1 min ago'],
    [-7_200_000, '2 h ago'],
    [-3 * 86_400_000, '3 d ago'],
    [30_000, 'in 30 s'],
  ])('relativeTime(now %s ms) is %s', (offset, expected) => {
    const now = Date.UTC(2026, 0, 1, 12);
    expect(relativeTime(offset === null ? null : new Date(now + offset).toISOString(), now)).toBe(expected);
  });
  it('an unparseable time reads as never', () => {
    expect(relativeTime('yesterday-ish')).toBe('never');
  });
});
