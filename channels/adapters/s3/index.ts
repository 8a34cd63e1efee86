/** The S3 adapter's door: the channel and its envelope (the format readers of its objects need). */
export { S3Channel, type S3ChannelOptions } from './channel.js';
export { ENVELOPE_HEADER_BYTES, ENVELOPE_MAGIC, ENVELOPE_TRAILER_BYTES, ENVELOPE_VERSION, unwrapEnvelope, wrapEnvelope, type EnvelopeState } from './envelope.js';
