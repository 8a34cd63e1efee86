/** The object stores' door: memory, a directory of files, S3; openObjectStore picks one by URL or spec. */
export { MemoryObjectStore } from './memory.js';
export { FileObjectStore } from './file.js';
export { S3ObjectStore, type S3ObjectStoreOptions } from './s3.js';
export { openObjectStore, type S3SpecInput } from './open.js';
export { ObjectStoreError, assertObjectKey, type ObjectStoreErrorCode } from '../object-store.js';
export type { ObjectStore } from '../datasets/types.js';
