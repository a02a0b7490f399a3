import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DaemonStartError, daemonMain, startDaemonServer } from './daemon';

// A daemon whose port is taken says so in one line naming its variable and exits 1, as the services do — before,
// the watchers died of an unhandled rejection with a stack trace.

describe('startDaemonServer and a port already taken', () => {
  let taken: Server;
  let port: number;
  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    port = (taken.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((r) => taken.close(r)));

  it('rejects with a DaemonStartError naming the variable and the port', async () => {
    const started = startDaemonServer({
      port,
      host: '127.0.0.1',
      portVariable: 'DOCKER_WATCHER_PORT',
      healthy: () => ({ ok: true, detail: {} }),
      metrics: () => [],
    });
    await expect(started).rejects.toBeInstanceOf(DaemonStartError);
    await expect(started).rejects.toThrow(
      `DOCKER_WATCHER_PORT: port ${port} is already in use by another process (stop it, or set DOCKER_WATCHER_PORT to a free port)`,
    );
  });
});

describe('daemonMain', () => {
  const run = async (failure: unknown): Promise<{ code: unknown; stderr: string }> => {
    let stderr = '';
    let exited!: (code: unknown) => void;
    const code = new Promise((r) => (exited = r));
    const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    const exit = jest.spyOn(process, 'exit').mockImplementation(((c: unknown) => exited(c)) as never);
    try {
      daemonMain('docker-watcher', () => Promise.reject(failure));
      return { code: await code, stderr };
    } finally {
      write.mockRestore();
      exit.mockRestore();
    }
  };

  it('ends a start failure with its one line on stderr and exit code 1 (no stack trace)', async () => {
    const { code, stderr } = await run(new DaemonStartError('DOCKER_WATCHER_PORT: port 3005 is already in use'));
    expect(code).toBe(1);
    expect(stderr).toBe('[docker-watcher] cannot start:\n  - DOCKER_WATCHER_PORT: port 3005 is already in use\n');
  });

  it('ends anything else with its stack and exit code 1 (not an unhandled rejection)', async () => {
    const { code, stderr } = await run(new Error('boom'));
    expect(code).toBe(1);
    expect(stderr).toMatch(/^\[docker-watcher\] Error: boom\n\s+at /);
  });
});
