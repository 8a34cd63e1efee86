/**
 * The launcher's own errors (an invoke Lambda refused, an event that cannot be sent) and the
 * mapping from what the SDK throws to one LambdaInvokeError with a code and a message that names
 * the function, the region and what to do.
 */
import { CirrusError } from '../../../paramserver/index.js';

export type LambdaInvokeErrorCode =
  | 'LAMBDA_FUNCTION_NOT_FOUND'
  | 'LAMBDA_THROTTLED'
  | 'LAMBDA_ACCESS_DENIED'
  | 'LAMBDA_CREDENTIALS'
  | 'LAMBDA_NETWORK'
  | 'LAMBDA_PAYLOAD_TOO_LARGE'
  | 'LAMBDA_CONFIG'
  | 'LAMBDA_BAD_RESPONSE'
  | 'LAMBDA_INVOKE_FAILED'
  /** The handle was killed (or the launcher closed) before Lambda answered the invoke. */
  | 'LAMBDA_NOT_INVOKED';

/** An Invoke that Lambda (or the way to it) refused: the worker never ran. */
export class LambdaInvokeError extends CirrusError<LambdaInvokeErrorCode> {
  readonly functionName: string;
  readonly region: string;
  /** Invoke attempts made (throttled ones included). */
  readonly attempts: number;
  /** The AWS error name (e.g. 'ResourceNotFoundException') or the socket error code, when known. */
  readonly awsError: string | undefined;
  constructor(code: LambdaInvokeErrorCode, message: string, info: { functionName: string; region: string; attempts: number; awsError?: string; cause?: unknown }) {
    super(code, message, info);
    this.functionName = info.functionName;
    this.region = info.region;
    this.attempts = info.attempts;
    this.awsError = info.awsError;
  }
}

/** An event that cannot be sent as an invoke payload; raised by launch(), before any request. */
export type LambdaPayloadErrorCode = 'LAMBDA_PAYLOAD_TOO_LARGE' | 'LAMBDA_PAYLOAD_INVALID';

export class LambdaPayloadError extends CirrusError<LambdaPayloadErrorCode> {
  /** Encoded size in bytes (too large only). */
  readonly bytes: number | undefined;
  readonly limit: number | undefined;
  constructor(code: LambdaPayloadErrorCode, message: string, bytes?: number, limit?: number) {
    super(code, message);
    this.bytes = bytes;
    this.limit = limit;
  }
}

const THROTTLE_ERRORS = new Set(['TooManyRequestsException', 'ThrottlingException', 'EC2ThrottledException']);
const NOT_FOUND_ERRORS = new Set(['ResourceNotFoundException']);
const ACCESS_ERRORS = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'MissingAuthenticationTokenException',
  'IncompleteSignatureException',
  'KMSAccessDeniedException',
]);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

function errorName(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { name?: unknown }).name === 'string' ? (err as { name: string }).name : 'Error';
}

/** Whether Lambda throttled the invoke (the only refusal worth retrying). */
export function isThrottle(err: unknown): boolean {
  return THROTTLE_ERRORS.has(errorName(err));
}

/** What the failed invoke was: the function, where it lives, how many attempts, the payload size. */
interface InvokeContext {
  functionName: string;
  region: string;
  endpoint: string | undefined;
  attempts: number;
  payloadBytes: number;
}

/** The SDK's error (or a socket's) -> one LambdaInvokeError with a code and a message saying what to do. */
export function mapInvokeError(err: unknown, ctx: InvokeContext): LambdaInvokeError {
  const { functionName: fn, region, attempts } = ctx;
  const name = errorName(err);
  const sysCode = (err as { code?: unknown }).code;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const msg = (err as Error).message ?? String(err);
  const where = `Lambda function '${fn}' in ${region}${ctx.endpoint !== undefined ? ` (endpoint ${ctx.endpoint})` : ''}`;
  const info = { functionName: fn, region, attempts, awsError: typeof sysCode === 'string' && !name.endsWith('Exception') ? sysCode : name, cause: err };
  if (NOT_FOUND_ERRORS.has(name)) return new LambdaInvokeError('LAMBDA_FUNCTION_NOT_FOUND', `${where} does not exist, or its alias/version does not: ${msg}`, info);
  if (THROTTLE_ERRORS.has(name)) {
    return new LambdaInvokeError('LAMBDA_THROTTLED', `invoking ${where} was throttled ${attempts} times in a row (${name}: ${msg}); giving up. Lower the launcher's concurrency or raise the function's concurrency limit`, info);
  }
  if (ACCESS_ERRORS.has(name) || status === 403) return new LambdaInvokeError('LAMBDA_ACCESS_DENIED', `access denied invoking ${where}: ${name}: ${msg}`, info);
  if (name === 'CredentialsProviderError') return new LambdaInvokeError('LAMBDA_CREDENTIALS', `no AWS credentials to invoke ${where}: ${msg}`, info);
  if (name === 'RequestEntityTooLargeException' || status === 413) return new LambdaInvokeError('LAMBDA_PAYLOAD_TOO_LARGE', `${where} refused the event as too large (${ctx.payloadBytes} bytes): ${msg}`, info);
  if ((typeof sysCode === 'string' && NETWORK_CODES.has(sysCode)) || name === 'TimeoutError') {
    return new LambdaInvokeError('LAMBDA_NETWORK', `could not reach ${where}: ${typeof sysCode === 'string' ? `${sysCode}: ` : ''}${msg}`, info);
  }
  if (/region is missing/i.test(msg)) return new LambdaInvokeError('LAMBDA_CONFIG', `no region to invoke Lambda function '${fn}': set the launcher's region or AWS_REGION (${msg})`, info);
  return new LambdaInvokeError('LAMBDA_INVOKE_FAILED', `invoking ${where} failed: ${name}: ${msg}`, info);
}
