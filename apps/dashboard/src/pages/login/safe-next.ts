/**
 * Where `?next=` may send a person after sign-in: only a place on this site, else the overview. Checked the way
 * the browser reads it (a URL resolved against this origin), not by its first characters: `/\evil.com` and a tab
 * or newline between two slashes start with one slash but name another host.
 */
export function safeNext(
  next: string | null,
  origin: string = globalThis.location?.origin ?? 'http://localhost',
): string {
  if (!next?.startsWith('/')) return '/';
  let url: URL;
  try {
    url = new URL(next, origin);
  } catch {
    return '/';
  }
  return url.origin === origin ? `${url.pathname}${url.search}${url.hash}` : '/';
}
