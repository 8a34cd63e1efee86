/**
 * Network namespaces for tests (client/deploy/emulator/netns.ts): outside CI a test that cannot
 * create one is skipped with the reason; under CI=true it fails.
 */
import { createWorkerNetwork, type WorkerNetwork } from '../../client/deploy/emulator/netns.js';
import { IN_CI } from './servers.js';

export type TestNetwork = WorkerNetwork;

export async function networkForTests(): Promise<{ network?: TestNetwork; skip?: string }> {
  try {
    return { network: await createWorkerNetwork() };
  } catch (err) {
    const reason = `cannot create a network namespace for the workers (needs root and iproute2): ${(err as Error).message}`;
    if (IN_CI) throw new Error(`${reason}: required under CI=true`);
    return { skip: reason };
  }
}
