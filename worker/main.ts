/** Child-process entry used by the local launcher: the production handler under worker/child.ts's runtime. */
import { runWorkerChild } from './child.js';
import { handler } from './handler.js';

await runWorkerChild(handler);
