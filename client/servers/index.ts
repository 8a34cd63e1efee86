/** The servers the client starts for the user: an embedded S3 (s3rver) and a private memcached. */
export { S3RVER_CREDENTIALS, s3SpecFor, startS3Server, type S3Server, type S3ServerOptions } from './s3.js';
export { findMemcachedBinary, startMemcached, type MemcachedServer, type MemcachedServerOptions } from './memcached.js';
