import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Real self-signed certificates for the probe tests, made by the `openssl` CLI (Debian's
// openssl, on these machines; Node has no API to issue a certificate). `openssl ca
// -selfsign` rather than `req -x509` because only it takes exact validity dates
// (-startdate/-enddate): an already expired certificate, one with 10 days and an hour left.

export interface TestCertificate {
  key: string;
  cert: string;
}

export interface CertificateOptions {
  notAfter: Date;
  notBefore?: Date;
  cn?: string;
  /** subjectAltName value (default `DNS:localhost,IP:127.0.0.1`). */
  altNames?: string;
}

/** `YYYYMMDDHHMMSSZ`, the GeneralizedTime openssl ca reads. */
function asn1Time(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

export function selfSignedCertificate(o: CertificateOptions): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'fw-cert-'));
  const file = (name: string): string => join(dir, name);
  try {
    writeFileSync(file('index.txt'), '');
    writeFileSync(file('serial'), '01\n');
    writeFileSync(
      file('ca.cnf'),
      [
        '[ca]',
        'default_ca = ca_default',
        '[ca_default]',
        `database = ${file('index.txt')}`,
        `new_certs_dir = ${dir}`,
        `serial = ${file('serial')}`,
        'default_md = sha256',
        'policy = policy_any',
        'copy_extensions = copy',
        'unique_subject = no',
        '[policy_any]',
        'commonName = supplied',
        'organizationName = optional',
        '',
      ].join('\n'),
    );
    const run = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
    run([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      file('key.pem'),
      '-out',
      file('csr.pem'),
      '-subj',
      `/CN=${o.cn ?? 'localhost'}/O=Fleetwatch Test`,
      '-addext',
      `subjectAltName=${o.altNames ?? 'DNS:localhost,IP:127.0.0.1'}`,
    ]);
    run([
      'ca',
      '-batch',
      '-notext',
      '-selfsign',
      '-config',
      file('ca.cnf'),
      '-keyfile',
      file('key.pem'),
      '-in',
      file('csr.pem'),
      '-out',
      file('cert.pem'),
      '-startdate',
      asn1Time(o.notBefore ?? new Date(Math.min(Date.now(), o.notAfter.getTime()) - 86_400_000)),
      '-enddate',
      asn1Time(o.notAfter),
    ]);
    return { key: readFileSync(file('key.pem'), 'utf8'), cert: readFileSync(file('cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Valid from yesterday until `days` days and `extraHours` hours from now. */
export function certificateForDays(days: number, extra: Omit<CertificateOptions, 'notAfter'> = {}, extraHours = 1) {
  return selfSignedCertificate({
    ...extra,
    notAfter: new Date(Date.now() + days * 86_400_000 + extraHours * 3_600_000),
  });
}
