// Jest globalTeardown of the `integration` project: removes what global-setup made.
import { tearDownTestRun } from '../run-resources';

export default async function globalTeardown(): Promise<void> {
  await tearDownTestRun();
}
