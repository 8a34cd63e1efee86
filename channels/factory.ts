/** Opens a channel from a spec object or URL, probing the server so a bad endpoint fails at once. */
import type { Channel } from './channel.js';
import { MemcachedChannel } from './adapters/memcached/index.js';
import { MemoryChannel } from './adapters/memory/index.js';
import { PsChannel } from './adapters/ps/index.js';
import { S3Channel } from './adapters/s3/index.js';
import { parseChannelSpec, type ChannelSpec, type ChannelSpecInput } from './spec.js';

export async function openChannel(input: ChannelSpecInput | ChannelSpec | string, where = 'channel'): Promise<Channel> {
  const spec = parseChannelSpec(input, where);
  switch (spec.kind) {
    case 'memory':
      return new MemoryChannel();
    case 'memcached':
      return MemcachedChannel.open(spec);
    case 's3':
      return S3Channel.open(spec);
    case 'ps':
      return PsChannel.open(spec);
  }
}
