/**
 * The one rule for a test that needs what a machine may lack (a server binary, a browser, a data
 * package, a runtime feature): under CI it fails, naming what is missing and how to get it;
 * elsewhere it is skipped with that reason, so a developer without it still runs the rest.
 * test/support/check-tests.ts (run by `npm test`) rejects any other skip.
 */
import type { TestContext } from 'node:test';

/** CI is on when the CI variable is 'true' or '1' (what CI services set). */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' || env.CI === '1';
}

export class MissingRequirementError extends Error {
  readonly code = 'TEST_REQUIREMENT_MISSING' as const;
  override readonly name = 'MissingRequirementError';
}

/**
 * `missing`: why the test cannot run here, or undefined when it can. Returns true when the test
 * was skipped (the caller returns at once); throws MissingRequirementError under CI.
 */
export function skipOrFail(t: Pick<TestContext, 'skip'>, missing: string | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (missing === undefined) return false;
  if (inCi(env)) throw new MissingRequirementError(`${missing}: required under CI=${env.CI}`);
  t.skip(missing);
  return true;
}
