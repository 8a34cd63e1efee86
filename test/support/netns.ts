/**
 * Network namespaces for tests (client/deploy/emulator/netns.ts). A test that cannot create one
 * gets the reason, for skipOrFail: it fails under CI and is skipped elsewhere.
 */
import { createWorkerNetwork, type WorkerNetwork } from '../../client/deploy/emulator/netns.js';

export type TestNetwork = WorkerNetwork;

export async function networkForTests(): Promise<{ network?: TestNetwork; missing?: string }> {
  try {
    return { network: await createWorkerNetwork() };
  } catch (err) {
    return { missing: `cannot create a network namespace for the workers (needs root and iproute2): ${(err as Error).message}` };
  }
}
