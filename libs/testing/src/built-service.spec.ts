import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnBuiltService } from './built-service';

// Small scripts stand for a built service: spawnBuiltService only needs a main.js that listens on the port given.

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'built-service-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(dir, `${name}.js`);
  writeFileSync(path, body);
  return path;
}

/** Listens on PORT; /readyz answers 503 until READY_AFTER_MS passed, then 200. */
const server = (extra = '') => `
const http = require('node:http');
const started = Date.now();
${extra}
http.createServer((req, res) => {
  res.statusCode = req.url === '/readyz' && Date.now() - started >= Number(process.env.READY_AFTER_MS) ? 200 : 503;
  res.end();
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

describe('spawnBuiltService', () => {
  it('waits for /readyz, passes the env with its port, keeps the last logTail characters and stops on SIGTERM', async () => {
    const main = script('ok', server(`console.log('x'.repeat(100) + process.env.GREETING);`));
    const svc = await spawnBuiltService({
      name: 'ok',
      main,
      env: (port) => ({ PORT: String(port), READY_AFTER_MS: '300', GREETING: 'hello' }),
      pollMs: 50,
      logTail: 10,
    });
    try {
      expect(svc.url).toBe(`http://127.0.0.1:${svc.port}`);
      expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
      expect(svc.output()).toBe('xxxxhello\n');
    } finally {
      await svc.stop();
    }
    expect(svc.child.signalCode).toBe('SIGTERM');
    await svc.stop(); // once gone, a no-op
  });

  it('rejects with `<name> exited (<code>):` and the output when it exits before ready', async () => {
    const main = script('exits', `console.error('boom'); process.exit(3);`);
    await expect(spawnBuiltService({ name: 'exits', main, env: () => ({}), pollMs: 20 })).rejects.toThrow(
      'exits exited (3):\nboom\n',
    );
  });

  it('rejects with `<name> not ready within N s:` and SIGKILLs it past readyTimeoutMs', async () => {
    const main = script('slow', server(`console.log('pid ' + process.pid);`));
    const started = Date.now();
    const err = await spawnBuiltService({
      name: 'slow',
      main,
      env: (port) => ({ PORT: String(port), READY_AFTER_MS: '60000' }),
      // Long enough for node to start and print its pid on a loaded box (0.5 s was not, at a load average of 13).
      readyTimeoutMs: 3000,
      pollMs: 50,
    }).catch((e: Error) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    expect(err).toBeInstanceOf(Error);
    const match = /^slow not ready within 3 s:\npid (\d+)\n$/.exec((err as Error).message);
    expect(match).not.toBeNull();
    const pid = Number(match?.[1]);
    const deadline = Date.now() + 5000;
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(alive()).toBe(false);
  });

  it('kill() ends it with SIGKILL, even one that ignores SIGTERM', async () => {
    const main = script('stubborn', server(`process.on('SIGTERM', () => {});`));
    const svc = await spawnBuiltService({
      name: 'stubborn',
      main,
      env: (port) => ({ PORT: String(port), READY_AFTER_MS: '0' }),
    });
    await svc.kill();
    expect(svc.child.signalCode).toBe('SIGKILL');
  });
});
