/**
 * The one place an S3Client is built. The S3 channel, the object store and the snapshot store all
 * come here, so they talk to s3rver, MinIO and AWS with the same settings.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

// The SDK warns on every Node 20 process that future releases will need Node 22; the versions this
// package pins support Node 20, so the warning is noise in every worker's stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Where and how to reach an S3-compatible store (a channel's S3Spec has this shape). */
export interface S3Connection {
  /** Without it the SDK's default region applies. */
  region?: string | undefined;
  /** A custom endpoint (s3rver, MinIO); without it, AWS S3. */
  endpoint?: string | undefined;
  /** Default: true with a custom endpoint, the SDK's default without one. */
  forcePathStyle?: boolean | undefined;
  /** Without them the SDK's standard credential chain applies. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined } | undefined;
  /** Connect and socket-idle limit in ms; without it the SDK's defaults. */
  timeoutMs?: number | undefined;
}

export function createS3Client(conn: S3Connection): S3Client {
  const config: S3ClientConfig = {
    // Without these the SDK streams uploads with aws-chunked framing and trailing checksums,
    // which s3rver stores verbatim inside the object.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (conn.region !== undefined) config.region = conn.region;
  if (conn.timeoutMs !== undefined) {
    // Connect and idle limits so a dead or black-holed endpoint fails instead of hanging; no
    // total-request limit, which would cut large transfers on slow links.
    config.requestHandler = { connectionTimeout: conn.timeoutMs, socketTimeout: conn.timeoutMs };
  }
  if (conn.endpoint) {
    config.endpoint = conn.endpoint;
    // Custom endpoints (s3rver, MinIO) rarely resolve virtual-host bucket names.
    config.forcePathStyle = conn.forcePathStyle ?? true;
  } else if (conn.forcePathStyle !== undefined) {
    config.forcePathStyle = conn.forcePathStyle;
  }
  if (conn.credentials) {
    const { accessKeyId, secretAccessKey, sessionToken } = conn.credentials;
    config.credentials = sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
  }
  return new S3Client(config);
}

/** Returns `user` once `probe` passed; closes it and rethrows when the probe fails (a bad endpoint fails at open). */
export async function probedOrClosed<T extends { close(): Promise<void> }>(user: T, probe: () => Promise<void>): Promise<T> {
  try {
    await probe();
  } catch (err) {
    await user.close();
    throw err;
  }
  return user;
}
