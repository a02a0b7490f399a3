import { ApiKeysRepository, withChecksum } from '@fleetwatch/persistence';
import { createIsolatedVhost, testEnv } from '@fleetwatch/testing';
import { errorOf, IngestHarness, update } from './int-spec.helpers';

// Refused API keys per client address (INGEST_AUTH_FAILURES_PER_IP_PER_MINUTE): past the budget an address gets 429 +
// Retry-After before its key is looked up (a forged key with a valid checksum costs a query); the address is the one
// the key allow-lists read (X-Forwarded-For only from INGEST_TRUST_PROXY); requests with good keys spend nothing.

let h: IngestHarness;

beforeAll(async () => {
  h = await IngestHarness.start(
    { vhost: await createIsolatedVhost('ingest-auth-failures'), databaseUrl: testEnv().databaseUrl },
    { INGEST_AUTH_FAILURES_PER_IP_PER_MINUTE: '5', INGEST_TRUST_PROXY: '127.0.0.1/32,::1/128' },
  );
});
afterAll(() => h?.stop());
afterEach(async () => {
  jest.restoreAllMocks();
  await h.drain();
});

let seq = 0;
/** A well-formed key nobody issued, with a valid checksum: refused only after a lookup. */
const forged = () => withChecksum(`fwk_${(0xa00000 + seq++).toString(16).padStart(12, '0')}_${'Q'.repeat(40)}`);
const from = (address: string) => ({ 'x-forwarded-for': address });

it('an address past its budget of refused keys gets 429 + Retry-After before any lookup; other addresses do not', async () => {
  const lookups = jest.spyOn(h.service.app.get(ApiKeysRepository), 'findActiveByPrefix');
  for (let i = 0; i < 5; i++) {
    const res = await h.post(update(1), { key: forged(), headers: from('198.51.100.1') });
    expect(res.status).toBe(401);
  }
  expect(lookups).toHaveBeenCalledTimes(5);
  const limited = await h.post(update(1), { key: forged(), headers: from('198.51.100.1') });
  expect(limited.status).toBe(429);
  expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(errorOf(limited)).toMatchObject({
    code: 'rate_limited',
    message: expect.stringMatching(/too many refused API keys from 198\.51\.100\.1/),
  });
  expect(lookups).toHaveBeenCalledTimes(5);

  const { key } = await h.createKey(['ingest']);
  expect((await h.post(update(1), { key, headers: from('198.51.100.2') })).status).toBe(202);
  expect((await h.post(update(1), { key: forged(), headers: from('198.51.100.2') })).status).toBe(401);
});

it('requests with a good key spend none of the budget', async () => {
  const { key } = await h.createKey(['ingest']);
  for (let i = 0; i < 20; i++)
    expect((await h.post(update(i), { key, headers: from('198.51.100.3') })).status).toBe(202);
  for (let i = 0; i < 5; i++)
    expect((await h.post(update(1), { key: forged(), headers: from('198.51.100.3') })).status).toBe(401);
  expect((await h.post(update(1), { key: forged(), headers: from('198.51.100.3') })).status).toBe(429);
});

it('forged keys sent all at once from an address with refusals cost no more lookups than its budget', async () => {
  const repo = h.service.app.get(ApiKeysRepository);
  const find = repo.findActiveByPrefix.bind(repo);
  // Slow lookups (a loaded database): the requests below are all under way together.
  const lookups = jest.spyOn(repo, 'findActiveByPrefix').mockImplementation(async (...args) => {
    await new Promise((r) => setTimeout(r, 300));
    return find(...args);
  });
  expect((await h.post(update(1), { key: forged(), headers: from('198.51.100.4') })).status).toBe(401);
  const answers = await Promise.all(
    Array.from({ length: 20 }, () => h.post(update(1), { key: forged(), headers: from('198.51.100.4') })),
  );
  const statuses = answers.map((r) => r.status);
  expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
  // One refusal spent one of five: four more lookups at most, however many arrive together.
  expect(lookups.mock.calls.length).toBeLessThanOrEqual(5);
  expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(16);
});

it('an IPv6 client is counted by its /64: rotating addresses inside it does not refill the budget', async () => {
  const lookups = jest.spyOn(h.service.app.get(ApiKeysRepository), 'findActiveByPrefix');
  for (let i = 0; i < 5; i++) {
    const res = await h.post(update(1), { key: forged(), headers: from(`2001:db8:5:7::${(i + 1).toString(16)}`) });
    expect(res.status).toBe(401);
  }
  const limited = await h.post(update(1), { key: forged(), headers: from('2001:db8:5:7:ffff:1:2:3') });
  expect(limited.status).toBe(429);
  expect(errorOf(limited)).toMatchObject({
    message: expect.stringMatching(/from 2001:db8:5:7:ffff:1:2:3 \(counted as 2001:db8:5:7::\/64\)/),
  });
  expect(lookups).toHaveBeenCalledTimes(5);
  // The next /64 has its own budget.
  expect((await h.post(update(1), { key: forged(), headers: from('2001:db8:5:8::1') })).status).toBe(401);
});
