import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@fleetwatch/config';
import type { RunningService } from '@fleetwatch/observability';
import { ApiKeysRepository, createPrismaClient, generateApiKey, type DatabaseClient } from '@fleetwatch/persistence';
import { createIsolatedVhost, testEnv, type IsolatedVhost } from '@fleetwatch/testing';
import { loadIngestConfig } from './config';
import { freePort, update } from './int-spec.helpers';
import { startStatusIngest } from './status-ingest.bootstrap';

// Optional mutual TLS on the ingest port (SPEC §6), with a CA, server and client
// certificates made here by the openssl CLI: client certificates are checked
// against INGEST_TLS_CLIENT_CA, and a key may require a certificate subject (CN).

const dir = mkdtempSync(join(tmpdir(), 'fw-mtls-'));
const pem = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function makeCa(name: string): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-subj',
    `/CN=${name}`,
    '-days',
    '2',
  );
}

function makeCert(name: string, ca: string, cn: string, usage: 'serverAuth' | 'clientAuth'): void {
  openssl(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/O=Fleetwatch test/CN=${cn}`,
  );
  const ext =
    usage === 'serverAuth'
      ? `extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n`
      : `extendedKeyUsage=clientAuth\n`;
  writeFileSync(pem(`${name}.ext`), ext);
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  );
}

makeCa('clients-ca');
makeCa('other-ca');
makeCa('server-ca');
makeCert('server', 'server-ca', 'localhost', 'serverAuth');
makeCert('daemon-1', 'clients-ca', 'daemon-1', 'clientAuth');
makeCert('daemon-2', 'clients-ca', 'daemon-2', 'clientAuth');
makeCert('impostor', 'other-ca', 'daemon-1', 'clientAuth');

interface Ingest {
  service: RunningService;
  port: number;
  vhost: IsolatedVhost;
}

async function startTlsIngest(clientAuth: 'optional' | 'required'): Promise<Ingest> {
  const port = await freePort();
  const vhost = await createIsolatedVhost(`ingest-mtls-${clientAuth}`);
  const config = loadIngestConfig({
    DATABASE_URL: testEnv().databaseUrl,
    AMQP_URL: vhost.amqpUrl,
    STATUS_INGEST_PORT: String(port),
    LOG_LEVEL: 'error',
    FLEETWATCH_SITE: 'test-site',
    FLEETWATCH_BOOT_TIMEOUT_SECONDS: '10',
    INGEST_TLS_CERT: pem('server.crt'),
    INGEST_TLS_KEY: pem('server.key'),
    INGEST_TLS_CLIENT_CA: pem('clients-ca.crt'),
    INGEST_TLS_CLIENT_AUTH: clientAuth,
  });
  return { service: await startStatusIngest(config), port, vhost };
}

interface Answer {
  status: number;
  body: { error?: { code: string; message: string } };
}

/** One HTTPS request trusting the server's CA, with `cert` (a name made above) as the client certificate, or none. */
function post(ingest: Ingest, key: string, cert: string | null, options: { tls12?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(update(1));
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: ingest.port,
        path: '/api/v1/status/updates',
        method: 'POST',
        agent: false,
        // TLS 1.2: a refused client certificate fails the handshake itself, with the server's alert.
        ...(options.tls12 ? { maxVersion: 'TLSv1.2' as const } : {}),
        ca: readFileSync(pem('server-ca.crt')),
        ...(cert ? { cert: readFileSync(pem(`${cert}.crt`)), key: readFileSync(pem(`${cert}.key`)) } : {}),
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          authorization: `Bearer ${key}`,
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

let db: DatabaseClient;
let keys: ApiKeysRepository;
let required: Ingest;
let optional: Ingest;

async function createKey(clientCertSubject: string | null): Promise<string> {
  const generated = generateApiKey();
  await keys.create({
    name: `mtls ${generated.prefix}`,
    prefix: generated.prefix,
    keyHash: generated.keyHash,
    scopes: ['ingest'],
    clientCertSubject,
  });
  return generated.key;
}

async function waitReady(ingest: Ingest, key: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await post(ingest, key, 'daemon-1').catch(() => null);
    if (res?.status === 202) return;
    if (Date.now() > deadline) throw new Error(`ingest on ${ingest.port} not answering 202: ${JSON.stringify(res)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  db = createPrismaClient(testEnv().databaseUrl, { poolSize: 2 });
  keys = new ApiKeysRepository(db);
  [required, optional] = await Promise.all([startTlsIngest('required'), startTlsIngest('optional')]);
  const probe = await createKey(null);
  await Promise.all([waitReady(required, probe), waitReady(optional, probe)]);
});
afterAll(async () => {
  for (const ingest of [required, optional]) {
    if (!ingest) continue;
    await ingest.service.shutdown('test');
    await ingest.vhost.dispose().catch(() => undefined);
  }
  await db?.$disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('INGEST_TLS_CLIENT_AUTH=required', () => {
  const refusal = (answer: Promise<Answer>): Promise<Error> =>
    answer.then(
      (res) => new Error(`answered ${res.status}`),
      (e: Error) => e,
    );

  it('refuses a client without a certificate at the handshake', async () => {
    const key = await createKey(null);
    expect((await refusal(post(required, key, null))).message).toMatch(/alert certificate required/);
    expect((await refusal(post(required, key, null, { tls12: true }))).message).toMatch(/alert handshake failure/);
  });

  it('refuses a certificate from another CA at the handshake, even with the right subject', async () => {
    const key = await createKey('daemon-1');
    expect((await refusal(post(required, key, 'impostor', { tls12: true }))).message).toMatch(
      /before secure TLS connection was established|unknown ca/,
    );
  });

  it('answers 403 for the right CA but another subject than the key requires', async () => {
    const key = await createKey('daemon-2');
    const res = await post(required, key, 'daemon-1');
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({
      code: 'forbidden',
      message: expect.stringMatching(/needs a client certificate for "daemon-2", not "daemon-1"/),
    });
  });

  it('accepts the right certificate and subject (202)', async () => {
    const key = await createKey('daemon-1');
    expect((await post(required, key, 'daemon-1')).status).toBe(202);
    // A key that names no subject takes any verified certificate.
    expect((await post(required, await createKey(null), 'daemon-2')).status).toBe(202);
  });
});

describe('INGEST_TLS_CLIENT_AUTH=optional', () => {
  it('lets a client without a certificate in, unless its key requires one', async () => {
    expect((await post(optional, await createKey(null), null)).status).toBe(202);
    const res = await post(optional, await createKey('daemon-1'), null);
    expect(res.status).toBe(403);
    expect(res.body.error?.message).toMatch(/needs a client certificate \(subject "daemon-1"\)/);
  });

  it('answers 401 for a certificate that does not verify against the client CA', async () => {
    const res = await post(optional, await createKey(null), 'impostor');
    expect(res.status).toBe(401);
    expect(res.body.error?.message).toMatch(/client certificate not trusted/);
  });

  it('checks the subject of a verified certificate', async () => {
    expect((await post(optional, await createKey('daemon-2'), 'daemon-2')).status).toBe(202);
    expect((await post(optional, await createKey('daemon-2'), 'daemon-1')).status).toBe(403);
  });
});

describe('TLS configuration', () => {
  const base = { STATUS_INGEST_PORT: '1' };

  it.each<[string, Record<string, string>, RegExp]>([
    [
      'a certificate without its key',
      { INGEST_TLS_CERT: pem('server.crt') },
      /INGEST_TLS_KEY: is required with INGEST_TLS_CERT/,
    ],
    [
      'client auth without a CA',
      { INGEST_TLS_CERT: pem('server.crt'), INGEST_TLS_KEY: pem('server.key'), INGEST_TLS_CLIENT_AUTH: 'required' },
      /INGEST_TLS_CLIENT_CA: is required with INGEST_TLS_CLIENT_AUTH=required/,
    ],
    [
      'client auth without TLS',
      { INGEST_TLS_CLIENT_AUTH: 'optional', INGEST_TLS_CLIENT_CA: pem('clients-ca.crt') },
      /INGEST_TLS_CLIENT_AUTH: needs TLS/,
    ],
    [
      'a missing file',
      { INGEST_TLS_CERT: pem('missing.crt'), INGEST_TLS_KEY: pem('server.key') },
      /INGEST_TLS_CERT: cannot read .*missing\.crt: ENOENT/,
    ],
    [
      'a file that is not PEM',
      { INGEST_TLS_CERT: pem('server.ext'), INGEST_TLS_KEY: pem('server.key') },
      /INGEST_TLS_CERT: .*server\.ext is not a PEM file/,
    ],
    [
      'an unknown mode',
      { INGEST_TLS_CLIENT_AUTH: 'sometimes' },
      /INGEST_TLS_CLIENT_AUTH: must be off, optional or required/,
    ],
  ])('refuses %s at boot, naming the variable', (_what, env, message) => {
    expect(() => loadIngestConfig({ ...base, ...env })).toThrow(ConfigError);
    expect(() => loadIngestConfig({ ...base, ...env })).toThrow(message);
  });

  it('is off by default', () => expect(loadIngestConfig(base).tls).toBeNull());
});
