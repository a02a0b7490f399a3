import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { MissingGpusNote } from './missing-gpus-note';

describe('MissingGpusNote (GPUs fallen off the bus)', () => {
  it('lists each missing GPU with its index, uuid, bus id, since when and nvidia-smi problem line', () => {
    const html = renderToStaticMarkup(
      <MissingGpusNote
        gpus={[
          {
            index: 3,
            uuid: 'GPU-0b8e5a4e-5d0c-4a8e-9a57-1f6a1b2c3d4e',
            name: 'NVIDIA H100 80GB HBM3',
            busId: '00000000:3B:00.0',
            since: '2026-12-07T07:00:00.000Z',
            problem: 'Unable to determine the device handle for GPU 00000000:3B:00.0: GPU is lost.',
          },
          { index: 5, uuid: 'GPU-1111', since: '2026-12-07T07:01:00.000Z' },
        ]}
      />,
    );
    expect(html).toContain('role="alert"');
    expect(html).toContain('2 GPUs are missing');
    expect(html).toContain('GPU 3 (NVIDIA H100 80GB HBM3)');
    expect(html).toContain('GPU-0b8e5a4e-5d0c-4a8e-9a57-1f6a1b2c3d4e');
    expect(html).toContain('00000000:3B:00.0');
    expect(html).toContain('dateTime="2026-12-07T07:00:00.000Z"');
    expect(html).toContain('GPU is lost.');
    expect(html).toContain('GPU 5');
  });

  it('says "1 GPU is" for one', () => {
    const html = renderToStaticMarkup(
      <MissingGpusNote gpus={[{ index: 0, uuid: 'GPU-a', since: '2026-12-07T07:00:00.000Z' }]} />,
    );
    expect(html).toContain('1 GPU is missing');
  });

  it.each([[[]], [undefined]])('says nothing for %p (none missing, or a collector that does not say)', (gpus) => {
    expect(renderToStaticMarkup(<MissingGpusNote gpus={gpus} />)).toBe('');
  });
});
