import { loadCollectorConfig } from '../config';

describe('host sampling configuration', () => {
  const load = (env: Record<string, string>) =>
    loadCollectorConfig({ FLEETWATCH_LOCATION: 'lab', COLLECTOR_SPOOL_DIR: '/var/spool/fw', ...env }).host;

  it.each([
    ['defaults: every 5 s, nvidia-smi from PATH, its own spool under the collector’s', {}, 5, 'nvidia-smi'],
    ['0 turns sampling off', { COLLECTOR_HOST_INTERVAL_SECONDS: '0' }, 0, 'nvidia-smi'],
    ['an nvidia-smi path', { COLLECTOR_NVIDIA_SMI: '/usr/bin/nvidia-smi' }, 5, '/usr/bin/nvidia-smi'],
    ['off: no GPU sampling', { COLLECTOR_NVIDIA_SMI: 'off' }, 5, undefined],
    ['empty is unset: the default', { COLLECTOR_NVIDIA_SMI: '' }, 5, 'nvidia-smi'],
  ])('%s', (_name, env, interval, smi) => {
    const host = load(env);
    expect(host.intervalSeconds).toBe(interval);
    expect(host.nvidiaSmi).toBe(smi);
    expect(host.spoolDir).toBe('/var/spool/fw/host');
    expect(host.spoolMaxBytes).toBe(32 * 1024 * 1024);
  });

  it.each([['-1'], ['3601'], ['1.5'], ['often']])('COLLECTOR_HOST_INTERVAL_SECONDS=%s is refused', (v) => {
    expect(() => load({ COLLECTOR_HOST_INTERVAL_SECONDS: v })).toThrow(/COLLECTOR_HOST_INTERVAL_SECONDS/);
  });

  it('GPUs are remembered in the spool directory; a missing one is forgotten after 7 days, or COLLECTOR_GPU_FORGET_AFTER_SECONDS', () => {
    expect(load({})).toMatchObject({
      gpuMemoryFile: '/var/spool/fw/known-gpus.json',
      gpuForgetAfterMs: 7 * 86_400_000,
    });
    expect(load({ COLLECTOR_GPU_FORGET_AFTER_SECONDS: '3600' }).gpuForgetAfterMs).toBe(3_600_000);
  });

  it.each([['0'], ['59'], ['1.5'], ['never']])('COLLECTOR_GPU_FORGET_AFTER_SECONDS=%s is refused', (v) => {
    expect(() => load({ COLLECTOR_GPU_FORGET_AFTER_SECONDS: v })).toThrow(/COLLECTOR_GPU_FORGET_AFTER_SECONDS/);
  });
});
