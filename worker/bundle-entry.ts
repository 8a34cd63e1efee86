/**
 * Entry of the local workers' CommonJS bundle (client/launchers/local-bundle.ts builds it): the
 * same runtime and handler as worker/main.ts, without top-level await, which CommonJS lacks.
 */
import { runWorkerChild } from './child.js';
import { handler } from './handler.js';

void runWorkerChild(handler);
