import { InMemoryLoginRateLimiter } from './login-rate-limiter';

describe('InMemoryLoginRateLimiter', () => {
  let now: number;
  const limiter = (perUsernamePerMinute: number, perAddressPerMinute: number, maxEntries = 1000) =>
    new InMemoryLoginRateLimiter({ perUsernamePerMinute, perAddressPerMinute, maxEntries, now: () => now });
  beforeEach(() => {
    now = 1_000_000;
  });

  it('allows perUsernamePerMinute attempts per username, then names the wait; case does not matter', async () => {
    const l = limiter(3, 100);
    for (let i = 0; i < 3; i++) expect(await l.take('10.0.0.1', 'admin')).toEqual({ allowed: true });
    expect(await l.take('10.0.0.1', 'admin')).toEqual({ allowed: false, retryAfterSeconds: 20, limitedBy: 'username' });
    expect((await l.take('10.0.0.9', 'ADMIN')).allowed).toBe(false);
    expect(await l.take('10.0.0.1', 'alice')).toEqual({ allowed: true });
    now += 20_000;
    expect(await l.take('10.0.0.1', 'admin')).toEqual({ allowed: true });
    expect((await l.take('10.0.0.1', 'admin')).allowed).toBe(false);
  });

  it('rotating usernames from one address is limited by the address budget', async () => {
    const l = limiter(3, 5);
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await l.take('10.0.0.1', `user-${i}`));
    expect(answers.slice(0, 5).every((a) => a.allowed)).toBe(true);
    expect(answers.slice(5)).toEqual(Array(3).fill({ allowed: false, retryAfterSeconds: 12, limitedBy: 'address' }));
    // Another address is not affected.
    expect(await l.take('10.0.0.2', 'user-9')).toEqual({ allowed: true });
  });

  it('one username from many addresses is limited by the username budget', async () => {
    const l = limiter(3, 5);
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await l.take(`10.0.1.${i}`, 'admin'));
    expect(answers.map((a) => a.allowed)).toEqual([true, true, true, false, false, false]);
    expect(answers[3]).toEqual({ allowed: false, retryAfterSeconds: 20, limitedBy: 'username' });
  });

  it('charges neither budget when one refuses', async () => {
    const l = limiter(1, 2);
    expect((await l.take('10.0.0.1', 'admin')).allowed).toBe(true);
    // Refused by the username: the address keeps its second attempt.
    expect((await l.take('10.0.0.1', 'admin')).allowed).toBe(false);
    expect((await l.take('10.0.0.1', 'alice')).allowed).toBe(true);
    // Refused by the address: bob keeps his attempt for another address.
    expect(await l.take('10.0.0.1', 'bob')).toMatchObject({ allowed: false, limitedBy: 'address' });
    expect((await l.take('10.0.0.2', 'bob')).allowed).toBe(true);
  });

  it('stays bounded', async () => {
    const l = limiter(5, 5, 100);
    for (let i = 0; i < 1000; i++) {
      now += 1000;
      await l.take(`10.0.${i >> 8}.${i & 255}`, `user-${i}`);
    }
    expect(l.size).toBeLessThanOrEqual(200);
  });
});

describe('IPv6 clients are counted per /64', () => {
  it('rotating addresses inside one /64 does not escape the per-address limit', async () => {
    const limiter = new InMemoryLoginRateLimiter({ perAddressPerMinute: 3, perUsernamePerMinute: 1000 });
    const answers = [];
    for (let i = 1; i <= 4; i++)
      answers.push((await limiter.take(`2001:db8:0:7::${i.toString(16)}`, `user-${i}`)).allowed);
    expect(answers).toEqual([true, true, true, false]);
    expect((await limiter.take('2001:db8:0:8::1', 'user-x')).allowed).toBe(true);
  });
});
