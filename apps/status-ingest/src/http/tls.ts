import { ConfigError } from '@fleetwatch/config';
import { UnauthorizedError } from '@fleetwatch/domain';
import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** off: no client certificates; optional: asked for, checked when sent; required: no verified certificate, no connection. */
export type ClientAuthMode = 'off' | 'optional' | 'required';
export const CLIENT_AUTH_MODES = ['off', 'optional', 'required'] as const;

export interface IngestTls {
  cert: Buffer;
  key: Buffer;
  clientCa: Buffer | null;
  clientAuth: ClientAuthMode;
}

export interface TlsVariables {
  INGEST_TLS_CERT?: string;
  INGEST_TLS_KEY?: string;
  INGEST_TLS_CLIENT_CA?: string;
  INGEST_TLS_CLIENT_AUTH: ClientAuthMode;
}

/** Reads the PEM files named by the INGEST_TLS_* variables; null when TLS is off. Throws ConfigError naming each problem. */
export function loadIngestTls(v: TlsVariables): IngestTls | null {
  const problems: { variable: string; message: string }[] = [];
  const read = (variable: keyof TlsVariables, path: string | undefined): Buffer | null => {
    if (!path) return null;
    try {
      const pem = readFileSync(path);
      if (!pem.includes('-----BEGIN')) problems.push({ variable, message: `${path} is not a PEM file` });
      return pem;
    } catch (e) {
      problems.push({
        variable,
        message: `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      });
      return null;
    }
  };
  const cert = read('INGEST_TLS_CERT', v.INGEST_TLS_CERT);
  const key = read('INGEST_TLS_KEY', v.INGEST_TLS_KEY);
  const clientCa = read('INGEST_TLS_CLIENT_CA', v.INGEST_TLS_CLIENT_CA);
  if (v.INGEST_TLS_CERT && !v.INGEST_TLS_KEY)
    problems.push({ variable: 'INGEST_TLS_KEY', message: 'is required with INGEST_TLS_CERT (the private key, PEM)' });
  if (v.INGEST_TLS_KEY && !v.INGEST_TLS_CERT)
    problems.push({
      variable: 'INGEST_TLS_CERT',
      message: 'is required with INGEST_TLS_KEY (the server certificate, PEM)',
    });
  const tls = Boolean(v.INGEST_TLS_CERT || v.INGEST_TLS_KEY);
  if (v.INGEST_TLS_CLIENT_AUTH !== 'off' && !v.INGEST_TLS_CLIENT_CA) {
    problems.push({
      variable: 'INGEST_TLS_CLIENT_CA',
      message: `is required with INGEST_TLS_CLIENT_AUTH=${v.INGEST_TLS_CLIENT_AUTH} (the CA that signs client certificates, PEM)`,
    });
  }
  if (v.INGEST_TLS_CLIENT_AUTH !== 'off' && !tls)
    problems.push({ variable: 'INGEST_TLS_CLIENT_AUTH', message: 'needs TLS: set INGEST_TLS_CERT and INGEST_TLS_KEY' });
  if (v.INGEST_TLS_CLIENT_CA && v.INGEST_TLS_CLIENT_AUTH === 'off')
    problems.push({
      variable: 'INGEST_TLS_CLIENT_AUTH',
      message: 'is off although INGEST_TLS_CLIENT_CA is set: use optional or required',
    });
  if (problems.length) throw new ConfigError(problems);
  if (!cert || !key) return null;
  return { cert, key, clientCa, clientAuth: v.INGEST_TLS_CLIENT_AUTH };
}

/** Node's HTTPS options: in `optional` mode the handshake lets any client in and each request checks the verdict. */
export function httpsOptionsOf(tls: IngestTls): ServerOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.clientCa ? { ca: tls.clientCa } : {}),
    requestCert: tls.clientAuth !== 'off',
    rejectUnauthorized: tls.clientAuth === 'required',
  };
}

/** A client certificate that verified against INGEST_TLS_CLIENT_CA. */
export interface ClientCertificate {
  /** The subject's common name (CN). */
  subject: string;
}

const verdicts = new WeakMap<Socket, ClientCertificate | null | UnauthorizedError>();

/**
 * The connection's verified client certificate, or null (plain HTTP, or none
 * sent). A certificate that did not verify (another CA, expired) is refused with
 * UnauthorizedError: in `optional` mode the handshake lets it through. Checked
 * once per connection.
 */
export function clientCertificateOf(socket: Socket): ClientCertificate | null {
  let verdict = verdicts.get(socket);
  if (verdict === undefined) {
    verdict = certificateVerdict(socket as TLSSocket);
    verdicts.set(socket, verdict);
  }
  if (verdict instanceof UnauthorizedError) throw verdict;
  return verdict;
}

function certificateVerdict(socket: TLSSocket): ClientCertificate | null | UnauthorizedError {
  if (!socket.encrypted || typeof socket.getPeerCertificate !== 'function') return null;
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return null;
  if (!socket.authorized)
    return new UnauthorizedError(
      `client certificate not trusted (${String(socket.authorizationError ?? 'unverified')}): use one signed by the configured client CA`,
    );
  const cn = cert.subject?.CN as string | string[] | undefined;
  return { subject: Array.isArray(cn) ? cn.join('+') : (cn ?? '') };
}
