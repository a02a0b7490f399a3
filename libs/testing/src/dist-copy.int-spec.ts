import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './admin/postgres';
import { copyBuiltDistAsync } from './dist-copy';
import { testEnv } from './test-env';

jest.setTimeout(120_000);

// copyBuiltDistAsync is for tests with a service already running in their own process (the gateway route specs
// start the gateway, then build and copy the owner): its AMQP connection must keep its 5 s heartbeats meanwhile.
// The synchronous copyBuiltDist held the event loop for the whole build: 1.8 s idle, 7-10 s on a loaded 2-core box.
it('builds and copies a whole dist/ without holding the event loop', async () => {
  const dir = join(repoRoot(), 'tmp', `dist-copy-async-${testEnv().runId}`);
  let last = performance.now();
  let longest = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 20);
  try {
    const started = performance.now();
    expect(await copyBuiltDistAsync(dir, { build: 'always', required: ['apps/status-ingest/src/main.js'] })).toBe(dir);
    const took = performance.now() - started;
    expect(existsSync(join(dir, 'dist/apps/status-ingest/src/main.js'))).toBe(true);
    // Held synchronously, the build is one stall of most of the time taken; awaited, the longest stall is scheduling
    // noise, a small part of it however loaded the box (which stretches both). The build is about half the time taken.
    expect(longest).toBeLessThan(took / 3);
  } finally {
    clearInterval(tick);
    rmSync(dir, { recursive: true, force: true });
  }
});
