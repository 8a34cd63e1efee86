/** The in-process adapter's door: a channel over a Map, shareable between channels through a MemoryStore. */
export { MemoryChannel, MemoryStore } from './channel.js';
