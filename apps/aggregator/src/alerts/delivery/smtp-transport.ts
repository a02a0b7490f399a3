import nodemailer from 'nodemailer';
import { isTransientSmtpCode, type EmailChannelRequest } from '@fleetwatch/alerting';
import type { TargetPolicy } from '@fleetwatch/domain';
import { defaultDeliveryPolicy, isTargetDenied, resolveChecked, type Lookup } from './checked-connect';
import type { SendResult } from './delivery.types';

const defaultPolicy = defaultDeliveryPolicy();

// Sends a channel's e-mail over SMTP with nodemailer: TLS from the start when the channel says `secure`,
// otherwise STARTTLS whenever the server offers it (required before a login: SmtpSettings.requireTls); every phase bounded in time; nodemailer's own logging
// off (it would print the login exchange) and no file or URL access for message parts. A 4xx reply and a
// lost connection are worth another try; a 5xx reply (a refused login, an unknown mailbox) is not.

export interface SmtpTransportOptions {
  /** Each phase, and the whole exchange: a server that accepts and then never answers frees the worker then. */
  timeoutMs: number;
  /** The target policy the SMTP host is checked against (default: the default deny list). */
  policy?: TargetPolicy;
  /** How the SMTP host's name is resolved (default: the system resolver), within timeoutMs. */
  lookup?: Lookup;
}

export const DEFAULT_SMTP_OPTIONS: SmtpTransportOptions = { timeoutMs: 15_000 };

const TRANSIENT_CODES = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETLS',
  'EPROTOCOL',
]);

/** Node's messages for a certificate that does not verify. */
const CERTIFICATE_PROBLEM =
  /self[- ]signed certificate|unable to (verify|get local issuer)|certificate has expired|Hostname\/IP does not match|certificate is not yet valid/i;

interface SmtpError {
  code?: string;
  responseCode?: number;
  response?: string;
  message?: string;
  command?: string;
  /** RCPT TO: the recipient refused. */
  recipient?: string;
}

/** The recipients of an envelope refused with a 4xx reply, each with that reply. */
function transientlyRefused(errors: readonly SmtpError[] | undefined): Array<{ recipient: string; text: string }> {
  const out: Array<{ recipient: string; text: string }> = [];
  for (const e of errors ?? [])
    if (typeof e.recipient === 'string' && typeof e.responseCode === 'number' && isTransientSmtpCode(e.responseCode))
      out.push({ recipient: e.recipient, text: `${e.recipient}: ${e.response ?? `SMTP ${e.responseCode}`}` });
  return out;
}

export async function sendEmail(
  req: EmailChannelRequest,
  options: SmtpTransportOptions = DEFAULT_SMTP_OPTIONS,
): Promise<SendResult> {
  const started = performance.now();
  const done = (r: Omit<SendResult, 'durationMs'>): SendResult => ({
    ...r,
    durationMs: Math.round(performance.now() - started),
  });
  let target: { address: string; literal: boolean };
  try {
    target = await resolveChecked(req.smtp.host, options.policy ?? defaultPolicy, options.timeoutMs, options.lookup);
  } catch (err) {
    const denied = isTargetDenied(err);
    const e = err as { code?: string; message?: string };
    return done({
      ok: false,
      transient: !denied,
      httpStatus: null,
      retryAfterMs: null,
      error: denied ? `refused by the target policy: ${e.message}` : `${e.code ?? 'EDNS'}: ${e.message ?? String(err)}`,
    });
  }
  const transport = nodemailer.createTransport({
    // Exactly the checked address; the name stays the TLS server name (SNI and the certificate check).
    host: target.address,
    // `tlsVerify: false` (a relay of one's own with a self-signed certificate): encrypted, not authenticated.
    tls: { ...(target.literal ? {} : { servername: req.smtp.host }), rejectUnauthorized: req.smtp.tlsVerify },
    port: req.smtp.port,
    secure: req.smtp.secure,
    // No login in clear: STARTTLS is sent whether or not the server lists it, and the exchange stops if it fails.
    requireTLS: req.smtp.requireTls,
    ...(req.smtp.username ? { auth: { user: req.smtp.username, pass: req.smtp.password ?? '' } } : {}),
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs,
    dnsTimeout: options.timeoutMs,
    logger: false,
    debug: false,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  let timer: NodeJS.Timeout | undefined;
  // The overall bound also ends the exchange itself: nodemailer closes the connection on the signal. (Only racing it
  // left the socket open — a relay trickling a never-ending reply mid-DATA kept it, one more per retry — and the mail
  // could still be accepted after this attempt was logged as timed out.)
  const abort = new AbortController();
  const overall = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      abort.abort();
    }, options.timeoutMs);
  });
  try {
    const info = await Promise.race([
      transport.sendMail({
        from: req.message.from,
        to: req.message.to,
        subject: req.message.subject,
        text: req.message.text,
        html: req.message.html,
        // One per delivery, the same at each attempt (a retry after a lost answer is a repeat the reader can drop).
        ...(req.message.messageId ? { messageId: req.message.messageId } : {}),
        disableFileAccess: true,
        disableUrlAccess: true,
        signal: abort.signal,
      }),
      overall,
    ]);
    const rejected = (info.rejected ?? []).length;
    // Recipients refused for now (4xx at RCPT TO: greylisting, a full mailbox) while others took the mail: the message
    // is tried again for them alone. Counted as delivered, they never got it.
    const later = transientlyRefused(info.rejectedErrors);
    if (later.length && later.length < req.message.to.length)
      return done({
        ok: false,
        transient: true,
        httpStatus: null,
        retryAfterMs: null,
        error: `sent to ${req.message.to.length - rejected} of ${req.message.to.length} recipients; refused for now: ${later
          .map((r) => r.text)
          .join('; ')}`,
        retryRecipients: later.map((r) => r.recipient),
      });
    if (rejected && rejected >= req.message.to.length)
      return done({
        ok: false,
        transient: false,
        httpStatus: null,
        retryAfterMs: null,
        error: 'every recipient was refused',
      });
    return done({
      ok: true,
      transient: false,
      httpStatus: null,
      retryAfterMs: null,
      error: rejected ? `${rejected} of ${req.message.to.length} recipients refused` : null,
    });
  } catch (err) {
    const e = err as SmtpError;
    const transient =
      typeof e.responseCode === 'number' ? isTransientSmtpCode(e.responseCode) : TRANSIENT_CODES.has(e.code ?? '');
    const what = e.responseCode ? `SMTP ${e.responseCode}` : (e.code ?? 'SMTP error');
    // The server refused STARTTLS, which a login requires (SmtpSettings.requireTls): sending the login anyway would put
    // the password in clear. A 5xx: it offers none, for good. A 4xx — RFC 3207's own 454 "TLS not available", which a
    // relay with no certificate (or a man in the middle) answers too — is tried again as any 4xx, and says so.
    const fix = 'use secure: true on port 465, or allowPlaintextLogin: true for a trusted relay';
    const refusedStartTls = e.command === 'STARTTLS' && typeof e.responseCode === 'number';
    const noStartTls = !refusedStartTls
      ? ''
      : (e.responseCode as number) >= 500
        ? ` — the server offers no STARTTLS, so the login was not sent (${fix})`
        : ` — the server refused STARTTLS, so the login was not sent (tried again; if it offers none, ${fix})`;
    // A certificate that does not verify (self-signed, expired, another name): say what would let it through.
    const message = e.response ?? e.message ?? String(err);
    const badCertificate =
      req.smtp.tlsVerify && !e.responseCode && CERTIFICATE_PROBLEM.test(message)
        ? ` — the server's TLS certificate does not verify (for a relay of your own with a self-signed certificate, set tlsVerify: false)`
        : '';
    return done({
      ok: false,
      transient,
      httpStatus: null,
      retryAfterMs: null,
      error: `${what}: ${message}${noStartTls}${badCertificate}`,
    });
  } finally {
    clearTimeout(timer);
    transport.close();
  }
}
