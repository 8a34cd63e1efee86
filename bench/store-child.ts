/**
 * Child process of the efficiency bench: the object store (s3rver) in a process of its own, so the
 * CPU it spends serving shards -- AWS S3's in production, billed per request, not per CPU-second --
 * is measured apart from the client's and the plain process's. Prints one JSON line with its
 * endpoint, and stops when its stdin closes (also when the bench dies).
 */
import { startS3Server } from '../client/index.js';

const directory = process.argv[2];
if (!directory) throw new Error('bench store-child: usage: store-child.js <directory>');
const server = await startS3Server({ directory, buckets: ['cirrus'] });
process.stdout.write(JSON.stringify({ endpoint: server.endpoint }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => void server.stop().finally(() => process.exit(0)));
