import { prometheusProbe, PROMETHEUS_ACCEPT } from './prometheus.probe';
import { checkOf, probeContext } from './testing/probe-context';
import { startHttpTarget, type TestTarget } from './testing/targets';

const PAGE = `# HELP pg_replication_lag_seconds Replication lag.
# TYPE pg_replication_lag_seconds gauge
pg_replication_lag_seconds{instance="db-1",role="replica"} 2.5
pg_replication_lag_seconds{instance="db-2",role="replica"} 31
# TYPE http_requests_total counter
http_requests_total{code="200",path="/a \\"quoted\\""} 1027 1700000000000
this line is not a sample
up 1
`;

describe('prometheus probe (real scrape of a local /metrics)', () => {
  let target: TestTarget;
  const accepts: (string | undefined)[] = [];
  beforeAll(async () => {
    target = await startHttpTarget((req, res) => {
      accepts.push(req.headers.accept);
      if (req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(PAGE);
      else if (req.url === '/moved') res.writeHead(302, { location: '/metrics' }).end();
      else if (req.url === '/empty') res.writeHead(200).end('# nothing yet\n');
      else res.writeHead(503).end('down');
    });
  });
  afterAll(() => target.close());

  const scrape = (path: string) =>
    prometheusProbe(checkOf({ name: 'm', type: 'prometheus', url: `${target.origin}${path}` }), probeContext());

  it('exposes the samples as metrics, skipping (and counting) a bad line; asks for the 0.0.4 text format', async () => {
    const out = await scrape('/metrics');
    expect(out.ok).toBe(true);
    expect(out.facts.status).toBe(200);
    expect(out.facts.metrics).toEqual([
      { name: 'pg_replication_lag_seconds', labels: { instance: 'db-1', role: 'replica' }, value: 2.5 },
      { name: 'pg_replication_lag_seconds', labels: { instance: 'db-2', role: 'replica' }, value: 31 },
      { name: 'http_requests_total', labels: { code: '200', path: '/a "quoted"' }, value: 1027 },
      { name: 'up', labels: {}, value: 1 },
    ]);
    expect(out.facts.result).toMatchObject({ samples: 4, skipped: 1, truncated: null });
    expect(accepts.at(-1)).toBe(PROMETHEUS_ACCEPT);
  });

  it('follows a redirect to the page', async () => {
    expect((await scrape('/moved')).facts.result).toMatchObject({ samples: 4 });
  });

  it('a non-2xx status or a page without samples is DOWN', async () => {
    expect(await scrape('/gone')).toMatchObject({
      ok: false,
      failureReason: 'status 503 not 2xx',
      facts: { status: 503 },
    });
    expect(await scrape('/empty')).toMatchObject({ ok: false, failureReason: 'no samples in the scrape' });
  });
});
