import nodemailer from 'nodemailer';
import { isTransientSmtpCode, type EmailChannelRequest } from '@fleetwatch/alerting';
import type { SendResult } from './delivery.types';

// Sends a channel's e-mail over SMTP with nodemailer: TLS from the start when the channel says `secure`,
// otherwise STARTTLS whenever the server offers it; every phase bounded in time; nodemailer's own logging
// off (it would print the login exchange) and no file or URL access for message parts. A 4xx reply and a
// lost connection are worth another try; a 5xx reply (a refused login, an unknown mailbox) is not.

export interface SmtpTransportOptions {
  timeoutMs: number;
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

interface SmtpError {
  code?: string;
  responseCode?: number;
  response?: string;
  message?: string;
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
  const transport = nodemailer.createTransport({
    host: req.smtp.host,
    port: req.smtp.port,
    secure: req.smtp.secure,
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
  try {
    const info = await transport.sendMail({
      from: req.message.from,
      to: req.message.to,
      subject: req.message.subject,
      text: req.message.text,
      html: req.message.html,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
    const rejected = (info.rejected ?? []).length;
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
    return done({
      ok: false,
      transient,
      httpStatus: null,
      retryAfterMs: null,
      error: `${what}: ${e.response ?? e.message ?? String(err)}`,
    });
  } finally {
    transport.close();
  }
}
