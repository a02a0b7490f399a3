import type { HostMetricsPayload } from '@fleetwatch/contracts';

type MissingGpu = NonNullable<HostMetricsPayload['missingGpus']>[number];

/**
 * GPUs the host's collector saw and no longer sees (fallen off the bus, or nvidia-smi giving no readings): their own
 * charts simply stop, so the page says so. Nothing when none is missing (or the collector does not say).
 */
export function MissingGpusNote({ gpus }: { gpus: readonly MissingGpu[] | undefined }) {
  if (!gpus?.length) return null;
  return (
    <div className="fw-alert" role="alert">
      <p>
        {gpus.length === 1 ? '1 GPU is' : `${gpus.length} GPUs are`} missing: seen earlier by this host&apos;s
        collector, not in its latest sample (alert on it with the metric <code>gpus_missing</code>).
      </p>
      <ul>
        {gpus.map((g) => (
          <li key={g.uuid}>
            GPU {g.index}
            {g.name ? ` (${g.name})` : ''} <span className="fw-mono">{g.uuid}</span>
            {g.busId ? (
              <>
                {' '}
                at <span className="fw-mono">{g.busId}</span>
              </>
            ) : null}{' '}
            — missing since <time dateTime={g.since}>{new Date(g.since).toLocaleString()}</time>
            {g.problem ? <>: {g.problem}</> : null}
          </li>
        ))}
      </ul>
    </div>
  );
}
