import { isStale } from './run-id';
import { useWorkerResources, workerResources } from './run-resources';
import { ENV } from './test-env';

function runEnv(): NodeJS.ProcessEnv {
  return {
    [ENV.runId]: '1764000000_a1b2c3',
    [ENV.serverDatabaseUrl]: 'postgresql://postgres@127.0.0.1:5432/postgres',
    [ENV.serverAmqpUrl]: 'amqp://guest:guest@127.0.0.1:5672',
    [ENV.databaseName]: 'fw_test_1764000000_a1b2c3',
    [ENV.databaseUrl]: 'postgresql://postgres@127.0.0.1:5432/fw_test_1764000000_a1b2c3',
    [ENV.vhost]: 'fw-test-1764000000_a1b2c3',
    [ENV.amqpUrl]: 'amqp://guest:guest@127.0.0.1:5672/fw-test-1764000000_a1b2c3',
    [ENV.redisPrefix]: 'fwtest:1764000000_a1b2c3:',
    [ENV.workers]: '3',
  };
}

describe('per-worker resources', () => {
  it('worker 1 keeps the run set; worker n gets names of its own under the run id', () => {
    const run = {
      databaseName: 'fw_test_1764000000_a1b2c3',
      vhost: 'fw-test-1764000000_a1b2c3',
      redisPrefix: 'fwtest:1764000000_a1b2c3:',
    };
    expect(workerResources(run, 1)).toEqual(run);
    const w2 = workerResources(run, 2);
    expect(w2).toEqual({
      databaseName: 'fw_test_1764000000_a1b2c3_w2',
      vhost: 'fw-test-1764000000_a1b2c3-w2',
      redisPrefix: 'fwtest:1764000000_a1b2c3:w2:',
    });
    // Named after the run: the run's teardown (by prefix) and a later run's sweep remove them.
    expect(w2.databaseName.startsWith(run.databaseName)).toBe(true);
    expect(w2.vhost.startsWith(run.vhost)).toBe(true);
    expect(w2.redisPrefix.startsWith(run.redisPrefix)).toBe(true);
    expect(isStale(w2.databaseName, 'fw_test_', Date.UTC(2030, 0, 1))).toBe(true);
    expect(isStale(w2.vhost, 'fw-test-', Date.UTC(2030, 0, 1))).toBe(true);
  });

  it("points a worker's env at its own database, vhost and prefix, idempotently", () => {
    const env = runEnv();
    useWorkerResources(2, env);
    useWorkerResources(2, env);
    expect(env[ENV.databaseName]).toBe('fw_test_1764000000_a1b2c3_w2');
    expect(env[ENV.databaseUrl]).toBe('postgresql://postgres@127.0.0.1:5432/fw_test_1764000000_a1b2c3_w2');
    expect(env[ENV.vhost]).toBe('fw-test-1764000000_a1b2c3-w2');
    expect(env[ENV.amqpUrl]).toBe('amqp://guest:guest@127.0.0.1:5672/fw-test-1764000000_a1b2c3-w2');
    expect(env[ENV.redisPrefix]).toBe('fwtest:1764000000_a1b2c3:w2:');
  });

  it('leaves worker 1, and a process outside a test run, as they are', () => {
    const env = runEnv();
    useWorkerResources(1, env);
    expect(env).toEqual(runEnv());
    const outside: NodeJS.ProcessEnv = {};
    useWorkerResources(4, outside);
    expect(outside).toEqual({});
  });

  it('refuses a worker the run made no set for, rather than share one', () => {
    expect(() => useWorkerResources(4, runEnv())).toThrow(/jest worker 4 has no resources of its own.*3 set/);
    const noCount = runEnv();
    delete noCount[ENV.workers];
    expect(() => useWorkerResources(2, noCount)).toThrow(/--maxWorkers=1/);
  });
});
