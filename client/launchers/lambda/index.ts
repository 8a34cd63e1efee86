/** The Lambda launcher's door: the launcher, its options, its handle and its errors. */
export { LambdaLauncher } from './launcher.js';
export { LAMBDA_PAYLOAD_LIMITS, type AwaitResult, type AwaitResultContext, type LambdaInvocationType, type LambdaLauncherOptions, type LambdaResultChannel, type LambdaRetryOptions } from './options.js';
export { LambdaInvokeError, LambdaPayloadError, type LambdaInvokeErrorCode, type LambdaPayloadErrorCode } from './errors.js';
export type { LambdaInvokeInfo, LambdaWorkerHandle } from './handle.js';
export type { LambdaWorkerError } from './response.js';
