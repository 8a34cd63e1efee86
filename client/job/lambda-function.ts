/**
 * Before a run on Lambda: the deployed function's Timeout and MemorySize decide when Lambda kills a
 * worker and what it is billed, so the run's launcher.timeoutS and launcher.memoryMb must agree
 * with them. Unset, they are taken from the function; set, a timeoutS longer than the function's
 * Timeout (workers would die before they checkpoint) or a memoryMb other than its MemorySize is
 * refused, naming both values.
 */
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { TrainError } from '../train-params.js';

interface LambdaLauncherParams {
  functionName: string;
  region?: string | undefined;
  endpoint?: string | undefined;
  timeoutS?: number | undefined;
  memoryMb?: number | undefined;
}

interface FunctionLimits {
  timeoutS: number;
  memoryMb: number;
}

export async function resolveFunctionLimits(l: LambdaLauncherParams): Promise<FunctionLimits> {
  const client = new LambdaClient({ ...(l.region ? { region: l.region } : {}), ...(l.endpoint ? { endpoint: l.endpoint } : {}), maxAttempts: 3 });
  let timeout: number | undefined;
  let memory: number | undefined;
  try {
    const c = await client.send(new GetFunctionConfigurationCommand({ FunctionName: l.functionName }));
    timeout = c.Timeout;
    memory = c.MemorySize;
  } catch (err) {
    const name = (err as { name?: string }).name ?? 'Error';
    const msg = (err as Error).message;
    if (name === 'ResourceNotFoundException') throw new TrainError('TRAIN_LAUNCHER', `params.launcher.functionName: Lambda function '${l.functionName}' does not exist${l.region ? ` in ${l.region}` : ''}; deploy it with \`npx cirrus deploy --function ${l.functionName.split(':')[0]}\``);
    throw new TrainError('TRAIN_LAUNCHER', `params.launcher: reading the configuration of Lambda function '${l.functionName}' failed: ${name}: ${msg}`, { cause: err });
  } finally {
    client.destroy();
  }
  if (timeout === undefined || memory === undefined) throw new TrainError('TRAIN_LAUNCHER', `params.launcher: Lambda function '${l.functionName}' reported no Timeout or MemorySize`);
  if (l.timeoutS !== undefined && l.timeoutS > timeout) {
    throw new TrainError(
      'TRAIN_PARAMS',
      `params.launcher.timeoutS: ${l.timeoutS} s is longer than the Timeout of Lambda function '${l.functionName}' (${timeout} s): Lambda would kill the workers before they checkpoint; set launcher.timeoutS to at most ${timeout}, or redeploy with --timeout ${Math.ceil(l.timeoutS)}`,
    );
  }
  if (l.memoryMb !== undefined && l.memoryMb !== memory) {
    throw new TrainError(
      'TRAIN_PARAMS',
      `params.launcher.memoryMb: ${l.memoryMb} MB disagrees with the MemorySize of Lambda function '${l.functionName}' (${memory} MB), which is what the workers get and are billed for; leave launcher.memoryMb unset, set it to ${memory}, or redeploy with --memory ${l.memoryMb}`,
    );
  }
  return { timeoutS: l.timeoutS ?? timeout, memoryMb: memory };
}
