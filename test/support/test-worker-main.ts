/** Child-process entry for launcher tests: the test handler (production tasks plus `noop`). */
import { runWorkerChild } from '../../worker/index.js';
import { handler } from './test-handler.js';

await runWorkerChild(handler);
