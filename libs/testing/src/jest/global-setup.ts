// Jest globalSetup of the `integration` project: one database, vhost and Redis key
// prefix per test run — and one more set per further worker when jest runs files side
// by side — handed to the workers through process.env (see testEnv(), worker-env.ts).
import { setUpTestRun } from '../run-resources';

/** Jest hands its global config first; only `maxWorkers` matters here. */
export default async function globalSetup(globalConfig: { maxWorkers?: number }): Promise<void> {
  await setUpTestRun(Math.max(1, globalConfig.maxWorkers ?? 1));
}
