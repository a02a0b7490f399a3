import net from 'node:net';
import { freePortBlock } from './free-ports';

const listen = (port: number) =>
  new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
const close = (server: net.Server) => new Promise<void>((resolve) => server.close(() => resolve()));

describe('freePortBlock', () => {
  it('draws consecutive ports below the ephemeral range that can all be bound', async () => {
    const base = await freePortBlock(3);
    expect(base).toBeGreaterThanOrEqual(10_000);
    expect(base + 2).toBeLessThan(32_768);
    const servers = await Promise.all([0, 1, 2].map((i) => listen(base + i)));
    await Promise.all(servers.map(close));
  });

  it('skips a port something listens on (on one address too)', async () => {
    const base = await freePortBlock(2);
    const taken = await listen(base);
    try {
      for (let i = 0; i < 10; i++) expect(await freePortBlock(1, { from: base, to: base + 1 })).toBe(base + 1);
    } finally {
      await close(taken);
    }
  });

  it('says so when the range has no free block', async () => {
    const base = await freePortBlock(1);
    const taken = await listen(base);
    try {
      await expect(freePortBlock(1, { from: base, to: base, attempts: 3 })).rejects.toThrow(/no 1 free/);
    } finally {
      await close(taken);
    }
  });
});
