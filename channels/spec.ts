/**
 * Channel specifications: plain JSON objects (they travel inside worker events) validated with zod,
 * and the URL shorthand users type on the command line.
 */
import { z } from 'zod';
import { ChannelError } from './errors.js';

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, { message: "expected 'host:port', e.g. '127.0.0.1:11211'" })
  .refine((s) => Number(s.split(':')[1]) > 0 && Number(s.split(':')[1]) < 65536, { message: 'port must be 1-65535' });

const memorySpec = z.object({ kind: z.literal('memory') }).strict();

export const memcachedSpec = z
  .object({
    kind: z.literal('memcached'),
    /** 'host:port' of the memcached server. */
    server: hostPort,
    /** Per-request timeout in ms (memjs' own default, 0.5 s, is too short under load). */
    timeoutMs: z.number().int().positive().max(600_000).default(5_000),
    /**
     * Values above this many bytes are split into chunks of this size. At most 1 MiB. The default,
     * 1 KiB under 1 MiB, leaves room for memcached's per-item overhead under its default -I 1m.
     */
    chunkBytes: z.number().int().min(1024).max(1024 * 1024).default(1023 * 1024),
    /** Parallel connections to the server (requests are spread over them). */
    connections: z.number().int().min(1).max(16).default(2),
    /** Every item expires this many seconds after its last write (at most 30 days, memcached's relative limit). */
    ttlS: z.number().int().min(1).max(30 * 86_400).default(86_400),
  })
  .strict();

export const s3Spec = z
  .object({
    kind: z.literal('s3'),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'expected an S3 bucket name (3-63 lowercase letters, digits, dots or hyphens)' }),
    /** Custom endpoint URL (s3rver, MinIO...); omit for AWS. */
    endpoint: z.url({ message: "expected an http(s) URL such as 'http://127.0.0.1:4568'" }).optional(),
    region: z.string().min(1).default('us-east-1'),
    /** Key prefix inside the bucket (e.g. 'cirrus/'). */
    prefix: z.string().default(''),
    forcePathStyle: z.boolean().optional(),
    credentials: z.object({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) }).strict().optional(),
    timeoutMs: z.number().int().positive().max(600_000).default(30_000),
  })
  .strict();

export const psSpec = z
  .object({
    kind: z.literal('ps'),
    /** 'host:port' of the parameter server. */
    address: hostPort,
    token: z.string().min(1).optional(),
    timeoutMs: z.number().int().positive().max(600_000).default(10_000),
  })
  .strict();

export const channelSpec = z.discriminatedUnion('kind', [memorySpec, memcachedSpec, s3Spec, psSpec]);

export type ChannelSpec = z.infer<typeof channelSpec>;
export type ChannelSpecInput = z.input<typeof channelSpec>;
export type MemcachedSpec = z.infer<typeof memcachedSpec>;
export type MemcachedSpecInput = z.input<typeof memcachedSpec>;
export type S3Spec = z.infer<typeof s3Spec>;
export type PsSpec = z.infer<typeof psSpec>;

export const CHANNEL_KINDS = ['memcached', 's3', 'ps', 'memory'] as const;

/** Validates a spec object; errors name the field and what was expected. */
export function parseChannelSpec(input: unknown, where = 'channel'): ChannelSpec {
  if (typeof input === 'string') return parseChannelUrl(input);
  const kind = (input as { kind?: unknown } | null)?.kind;
  if (typeof kind !== 'string' || !(CHANNEL_KINDS as readonly string[]).includes(kind)) {
    throw new ChannelError('CHANNEL_UNKNOWN', `${where}.kind: unknown channel ${JSON.stringify(kind)}; expected one of ${CHANNEL_KINDS.join(', ')}`);
  }
  const r = channelSpec.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = [where, ...issue.path.map(String)].join('.');
    throw new ChannelError('CHANNEL_ENDPOINT', `${path}: ${issue.message}`);
  }
  return r.data;
}

/**
 * URL shorthand: 'memory://', 'memcached://host:port', 'ps://host:port',
 * 's3://bucket[/prefix]?endpoint=http://127.0.0.1:4568&region=us-east-1'.
 */
export function parseChannelUrl(url: string): ChannelSpec {
  const m = /^([a-z0-9]+):\/\/(.*)$/.exec(url);
  if (!m) throw new ChannelError('CHANNEL_ENDPOINT', `channel '${url}': expected a URL such as memcached://127.0.0.1:11211, s3://bucket?endpoint=..., ps://127.0.0.1:7070 or memory://`);
  const [, scheme, rest] = m as unknown as [string, string, string];
  const [path, query = ''] = rest.split('?', 2) as [string, string?];
  const params = new URLSearchParams(query);
  const num = (name: string) => (params.has(name) ? Number(params.get(name)) : undefined);
  switch (scheme) {
    case 'memory':
      return parseChannelSpec({ kind: 'memory' }, url);
    case 'memcached':
      return parseChannelSpec(dropUndefined({ kind: 'memcached', server: path, timeoutMs: num('timeoutMs'), chunkBytes: num('chunkBytes'), connections: num('connections'), ttlS: num('ttlS') }), url);
    case 'ps':
      return parseChannelSpec(dropUndefined({ kind: 'ps', address: path, token: params.get('token') ?? undefined, timeoutMs: num('timeoutMs') }), url);
    case 's3': {
      const slash = path.indexOf('/');
      const bucket = slash < 0 ? path : path.slice(0, slash);
      const prefix = slash < 0 ? undefined : path.slice(slash + 1);
      return parseChannelSpec(
        dropUndefined({ kind: 's3', bucket, prefix, endpoint: params.get('endpoint') ?? undefined, region: params.get('region') ?? undefined, forcePathStyle: params.has('endpoint') ? true : undefined }),
        url,
      );
    }
    default:
      throw new ChannelError('CHANNEL_UNKNOWN', `channel '${url}': unknown channel '${scheme}'; expected one of ${CHANNEL_KINDS.join(', ')}`);
  }
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
