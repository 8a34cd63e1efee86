/** The memcached adapter's door: the channel, its item format (manifest, chunk keys) and its bare clients (bulk pipeline, linear memjs) for benches. */
export { MemcachedChannel, SMALL_ITEM_BYTES } from './channel.js';
export { MANIFEST_BYTES, chunkKey, chunkKeys, decodeManifest, encodeManifest, isChunkKey, type Manifest } from './item.js';
export type { LentBuffer } from '../../channel.js';
export { openBulkConnection, type BulkConnection } from './bulk.js';
export { createLinearClient } from './memjs-linear.js';
export { listMemcachedKeys } from './list-keys.js';
