import type { EmailChannelRequest } from '@fleetwatch/alerting';
import { defaultDeliveryPolicy, DeliveryTargetDeniedError, resolveChecked, type Lookup } from './checked-connect';
import { sendEmail } from './smtp-transport';

// The SMTP host's name is resolved within the send's timeout: the system resolver is bounded only by the OS, and a
// host whose DNS hung held its delivery (and one of libuv's four resolver threads) for as long.

const hanging: Lookup = () => new Promise(() => undefined);
const policy = defaultDeliveryPolicy();

describe('resolveChecked', () => {
  it('a lookup that never answers fails after the timeout, as a transient DNS error', async () => {
    const t0 = Date.now();
    const err = await resolveChecked('mail.example.com', policy, 100, hanging).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ETIMEOUT', message: 'DNS lookup of mail.example.com took over 100 ms' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('answers are checked as before: a denied one refuses the name, an allowed one is the address', async () => {
    const denied: Lookup = async () => [{ address: '169.254.169.254', family: 4 }];
    await expect(resolveChecked('meta.example.com', policy, 100, denied)).rejects.toBeInstanceOf(
      DeliveryTargetDeniedError,
    );
    const fine: Lookup = async () => [{ address: '203.0.113.7', family: 4 }];
    await expect(resolveChecked('mail.example.com', policy, 100, fine)).resolves.toEqual({
      address: '203.0.113.7',
      literal: false,
    });
  });
});

describe('sendEmail', () => {
  it('an SMTP host whose DNS hangs fails the send within its timeout, to be tried again', async () => {
    const req = {
      kind: 'email',
      smtp: { host: 'mail.example.com', port: 587, secure: false, requireTls: false },
      message: { from: 'a@example.com', to: ['b@example.com'], subject: 's', text: 't' },
    } as unknown as EmailChannelRequest;
    const t0 = Date.now();
    const r = await sendEmail(req, { timeoutMs: 150, lookup: hanging });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r).toMatchObject({
      ok: false,
      transient: true,
      error: 'ETIMEOUT: DNS lookup of mail.example.com took over 150 ms',
    });
  });
});
