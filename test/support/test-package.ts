/**
 * Lambda packages for tests, built by the same code as `cirrus deploy`'s: the production package
 * (worker/handler.ts) and the test package (test-handler.ts: production tasks plus `noop`). Each is
 * built once per test process.
 */
import { fileURLToPath } from 'node:url';
import { buildWorkerPackage, type WorkerPackage } from '../../client/deploy/package.js';

let production: Promise<WorkerPackage> | undefined;
let testing: Promise<WorkerPackage> | undefined;

export function productionPackage(): Promise<WorkerPackage> {
  return (production ??= buildWorkerPackage());
}

export function testPackage(): Promise<WorkerPackage> {
  return (testing ??= buildWorkerPackage({ entry: fileURLToPath(new URL('./test-handler.js', import.meta.url)) }));
}
