// Jest globalSetup of the `integration` project: one database, vhost and Redis key
// prefix per test run, handed to the workers through process.env (see testEnv()).
import { setUpTestRun } from '../run-resources';

export default async function globalSetup(): Promise<void> {
  await setUpTestRun();
}
