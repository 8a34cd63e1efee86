/**
 * Waiting on Lambda's control plane: a function is usable once its State is Active and its
 * LastUpdateStatus is not InProgress; a role created a moment ago cannot be assumed by Lambda yet,
 * so CreateFunction is retried (bounded, with back-off) while Lambda says so. Every wait has a
 * deadline and fails naming what it waited for.
 */
import { GetFunctionConfigurationCommand, type FunctionConfiguration, type LambdaClient } from '@aws-sdk/client-lambda';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeployError } from './errors.js';

export interface Waits {
  /** Longest wait for Active / Successful. Default 300 s. */
  readyTimeoutMs: number;
  /** Longest time to keep retrying a role Lambda cannot assume yet. Default 120 s. */
  roleTimeoutMs: number;
  /** First poll / retry delay; grows x1.5 up to maxDelayMs. Default 250 ms. */
  firstDelayMs: number;
  maxDelayMs: number;
}

const DEFAULT_WAITS: Waits = { readyTimeoutMs: 300_000, roleTimeoutMs: 120_000, firstDelayMs: 250, maxDelayMs: 5_000 };
const ROLE_NOT_ASSUMABLE = /cannot be assumed by Lambda/i;

export function awsName(err: unknown): string {
  return (err as { name?: string }).name ?? 'Error';
}

export function failure(what: string, err: unknown): DeployError {
  if (err instanceof DeployError) return err;
  const name = awsName(err);
  const hint = name === 'CredentialsProviderError' ? ' (no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)' : /region is missing/i.test((err as Error).message) ? ' (set --region or AWS_REGION)' : '';
  return new DeployError('DEPLOY_AWS', `${what}: ${name}: ${(err as Error).message}${hint}`, { cause: err });
}

/** Polls until the function is Active with no update in progress; returns its configuration then. */
export async function waitUntilReady(lambda: LambdaClient, name: string, waits: Partial<Waits> = {}): Promise<FunctionConfiguration> {
  const w = { ...DEFAULT_WAITS, ...waits };
  const deadline = Date.now() + w.readyTimeoutMs;
  let delay = w.firstDelayMs;
  for (;;) {
    let c: FunctionConfiguration;
    try {
      c = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
    } catch (err) {
      throw failure(`GetFunctionConfiguration ${name}`, err);
    }
    if (c.State === 'Failed') throw new DeployError('DEPLOY_AWS', `function ${name} failed to become Active: ${c.StateReasonCode ?? ''} ${c.StateReason ?? ''}`.trim());
    if (c.LastUpdateStatus === 'Failed') throw new DeployError('DEPLOY_AWS', `the last update of function ${name} failed: ${c.LastUpdateStatusReasonCode ?? ''} ${c.LastUpdateStatusReason ?? ''}`.trim());
    if (c.State === 'Active' && c.LastUpdateStatus !== 'InProgress') return c;
    if (Date.now() + delay > deadline) {
      throw new DeployError('DEPLOY_TIMEOUT', `function ${name} was still ${c.State}${c.LastUpdateStatus === 'InProgress' ? ' with an update InProgress' : ''} after ${w.readyTimeoutMs} ms`);
    }
    await sleep(delay);
    delay = Math.min(w.maxDelayMs, delay * 1.5);
  }
}

/** Runs `call`, retrying while Lambda cannot assume the role yet (only when the role is new, or up to the deadline). */
export async function retryWhileRoleNotAssumable<T>(call: () => Promise<T>, opts: { waits?: Partial<Waits>; roleIsNew: boolean; onRetry: (attempt: number) => void }): Promise<T> {
  const w = { ...DEFAULT_WAITS, ...opts.waits };
  const deadline = Date.now() + w.roleTimeoutMs;
  let delay = w.firstDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const notYet = awsName(err) === 'InvalidParameterValueException' && ROLE_NOT_ASSUMABLE.test((err as Error).message);
      if (!notYet) throw failure('Lambda', err);
      if (Date.now() + delay > deadline) {
        const why = opts.roleIsNew ? `still not assumable after ${w.roleTimeoutMs} ms` : 'not assumable (does it exist, and does its trust policy allow lambda.amazonaws.com?)';
        throw new DeployError('DEPLOY_ROLE_NOT_ASSUMABLE', `Lambda cannot assume the execution role: ${why}: ${(err as Error).message}`, { cause: err });
      }
      opts.onRetry(attempt);
      await sleep(delay);
      delay = Math.min(w.maxDelayMs, delay * 1.5);
    }
  }
}
