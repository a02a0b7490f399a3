import { describe, expect, it } from 'vitest';
import { safeNext } from './safe-next';

// `?next=` after sign-in: only a place on this site. A path a browser reads as another host (`/\evil.com`,
// a tab or newline between the slashes) passed the old startsWith('/') check; React Router refused the
// navigation and the login page became its "Unexpected Application Error" page.
const ORIGIN = 'http://dash.test';

describe('safeNext', () => {
  it.each([
    ['/targets?status=DOWN', '/targets?status=DOWN'],
    ['/targets/instance%3Aweb-1#x', '/targets/instance%3Aweb-1#x'],
    ['/%5Cevil.com', '/%5Cevil.com'],
    ['/', '/'],
  ])('%s stays %s', (next, expected) => {
    expect(safeNext(next, ORIGIN)).toBe(expected);
  });
  it.each([
    [null],
    [''],
    ['targets'],
    ['//evil.com'],
    ['/\\evil.com'],
    ['/\\/evil.com'],
    ['/\t/evil.com'],
    ['/\n/evil.com'],
    ['\\\\evil.com'],
    ['https://evil.com/'],
    ['javascript:alert(1)'],
  ])('%j goes to the overview', (next) => {
    expect(safeNext(next, ORIGIN)).toBe('/');
  });
});
