/** The one S3 module (client construction, requests, error wording) used by the S3 channel, the object store and snapshots. */
export { createS3Client, probedOrClosed, type S3Connection } from './client.js';
export { S3_MAX_BATCH, deleteObjects, getObject, listObjects, mapLimit, putObject, readBody, type DeleteFailure, type DeleteOptions, type GetOptions, type GotObject, type ListOptions } from './requests.js';
export { describeKeys, describeRequestFailure, describeSdkError, httpStatus, isMissingKey, probeBucket, type BucketProblem, type SdkErrorShape } from './sdk-errors.js';
