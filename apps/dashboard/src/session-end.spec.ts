import { afterEach, describe, expect, it, vi } from 'vitest';
import { endServerSession } from './session-end';

// Sign-out: the session cookie is HttpOnly, so only the gateway can end the session. A sign-out whose DELETE
// failed left the cookie and the server session alive while the page showed the login form: a reload (the next
// person at a shared screen) was signed in again.

const asked: { method: string; path: string }[] = [];

function answer(respond: () => Response | Promise<Response>): void {
  vi.stubGlobal('fetch', async (path: string, init: { method?: string }) => {
    asked.push({ method: init.method ?? 'GET', path });
    return respond();
  });
}

afterEach(() => {
  vi.unstubAllGlobals();
  asked.length = 0;
});

describe('endServerSession', () => {
  it('asks the gateway to end the session, and is done when it did (204)', async () => {
    answer(() => new Response(null, { status: 204 }));
    await expect(endServerSession()).resolves.toBeUndefined();
    expect(asked).toEqual([{ method: 'DELETE', path: '/api/v1/auth/session' }]);
  });
  it('a session already gone (401) is ended too', async () => {
    answer(() => new Response(JSON.stringify({ error: { message: 'no session' } }), { status: 401 }));
    await expect(endServerSession()).resolves.toBeUndefined();
  });
  it.each([
    ['a 5xx', () => new Response(JSON.stringify({ error: { message: 'bus down' } }), { status: 503 })],
    ['a refused CSRF proof (403)', () => new Response(JSON.stringify({ error: { message: 'csrf' } }), { status: 403 })],
    [
      'a network error',
      () => {
        throw new TypeError('Failed to fetch');
      },
    ],
  ])('%s is a failed sign-out: the session is still open', async (_name, respond) => {
    answer(respond);
    await expect(endServerSession()).rejects.toThrow(/sign-out failed/i);
  });
});
