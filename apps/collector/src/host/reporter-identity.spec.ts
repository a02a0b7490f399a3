import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostMetricsPayloadSchema } from '@fleetwatch/contracts';
import { HostSampler } from './host-sampler';
import { INSTALL_ID_FILE, loadReporterIdentity } from './reporter-identity';

describe('reporter identity (who sends the host samples)', () => {
  let dir: string;
  const logger = { warn: jest.fn() };
  const BOOT = '2f0c1f8e-0b6a-4b43-9d8a-6f0e2b1c3d4e';

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fw-reporter-'));
    logger.warn.mockReset();
    await writeFile(join(dir, 'boot_id'), `${BOOT}\n`);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('makes an installation id once and keeps it across restarts; the boot id is the kernel’s', async () => {
    const spool = join(dir, 'spool');
    const first = await loadReporterIdentity(spool, logger, join(dir, 'boot_id'));
    expect(first.installId).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.bootId).toBe(BOOT);
    const stored = JSON.parse(await readFile(join(spool, INSTALL_ID_FILE), 'utf8')) as { installId: string };
    expect(stored.installId).toBe(first.installId);
    // A restart (same spool directory, same boot): the same identity.
    expect(await loadReporterIdentity(spool, logger, join(dir, 'boot_id'))).toEqual(first);
    // Another installation (its own spool directory) on the same boot: another identity.
    const other = await loadReporterIdentity(join(dir, 'other'), logger, join(dir, 'boot_id'));
    expect(other.installId).not.toBe(first.installId);
    expect(logger.warn).not.toHaveBeenCalled();
  });

  it('replaces a file that holds no id (warned); no boot id where the kernel has none', async () => {
    await writeFile(join(dir, INSTALL_ID_FILE), '{"installId": 42}');
    const id = await loadReporterIdentity(dir, logger, join(dir, 'no-such-file'));
    expect(id).toEqual({ installId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(await loadReporterIdentity(dir, logger, join(dir, 'no-such-file'))).toEqual(id);
  });

  it('keeps an id for this process when the directory cannot be written', async () => {
    if (process.getuid?.() === 0) return; // root writes anyway
    await chmod(dir, 0o500);
    try {
      const id = await loadReporterIdentity(join(dir, 'spool'), logger, join(dir, 'boot_id'));
      expect(id.installId).toMatch(/^[0-9a-f-]{36}$/);
      expect(logger.warn).toHaveBeenCalledTimes(1);
    } finally {
      await chmod(dir, 0o700);
    }
  });

  it('every host sample carries it, and the contract takes it', async () => {
    const reporter = await loadReporterIdentity(dir, logger, join(dir, 'boot_id'));
    const s = new HostSampler({ hostId: 'h', location: 'l', intervalSeconds: 5, linux: false, reporter });
    const sample = hostMetricsPayloadSchema.parse(await s.sample());
    expect(sample.reporter).toEqual(reporter);
    // A collector of before sends none: still a sample.
    const old = new HostSampler({ hostId: 'h', location: 'l', intervalSeconds: 5, linux: false });
    expect(hostMetricsPayloadSchema.parse(await old.sample()).reporter).toBeUndefined();
  });
});
