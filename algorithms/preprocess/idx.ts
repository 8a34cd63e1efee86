/**
 * IDX files (MNIST, Fashion-MNIST), plain or gzipped: a big-endian header (magic 0x0000TTDD: TT the
 * element type, DD the number of dimensions, then DD u32 sizes) and the elements. Supported:
 * images 0x00000803 (u8, n x rows x cols) with labels 0x00000801 (u8, n).
 *
 * Pixels are scaled to [0, 1] as value / 255 (Float32), the usual input range for these models.
 * Both files are streamed a batch of records at a time; nothing holds a whole file.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DenseRow } from './csv.js';
import { InputError } from './errors.js';
import { openInput, rowsOf, type InputFile, type RowSource } from './lines.js';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
/** Pixel scaling applied to every image value (recorded in the manifest's transforms). */
export const PIXEL_SCALE = 1 / 255;
/** p / 255 for every byte value, computed once (a lookup is exact and cheaper than dividing). */
const SCALED = Float32Array.from({ length: 256 }, (_, p) => p / 255);
const BATCH_ROWS = 1024;

/** Reads exact byte counts from a chunked stream. */
class ByteReader {
  private readonly chunks: AsyncGenerator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Bytes handed out so far. */
  delivered = 0;

  constructor(input: InputFile) {
    this.chunks = input.chunks();
  }

  /** Up to n bytes; fewer only at the end of the data. Valid until the next call. */
  async read(n: number): Promise<Buffer> {
    if (this.buf.length - this.pos >= n) {
      const out = this.buf.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.delivered += n;
      return out;
    }
    const parts: Buffer[] = [this.buf.subarray(this.pos)];
    let have = parts[0]!.length;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    while (have < n) {
      const next = await this.chunks.next();
      if (next.done) break;
      const chunk = next.value;
      const take = Math.min(chunk.length, n - have);
      parts.push(chunk.subarray(0, take));
      have += take;
      if (take < chunk.length) {
        this.buf = chunk;
        this.pos = take;
      }
    }
    this.delivered += have;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
  }

  /** Counts (and discards) whatever is left. */
  async drain(): Promise<number> {
    let rest = this.buf.length - this.pos;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    for await (const chunk of { [Symbol.asyncIterator]: () => this.chunks }) rest += chunk.length;
    this.delivered += rest;
    return rest;
  }

  async close(): Promise<void> {
    await this.chunks.return(undefined);
  }
}

interface IdxHeader {
  dims: number[];
  headerBytes: number;
  dataBytes: number;
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}

async function readHeader(reader: ByteReader, input: InputFile, magic: number, what: string): Promise<IdxHeader> {
  const ndims = magic & 0xff;
  const headerBytes = 4 + 4 * ndims;
  const head = await reader.read(headerBytes);
  const kind = input.gzip ? 'decompressed ' : '';
  if (head.length >= 4 && head.readUInt32BE(0) !== magic) {
    throw new InputError('INPUT_FORMAT', input.file, `expected IDX ${what} magic ${hex(magic)} (unsigned bytes, ${ndims} dimension${ndims === 1 ? '' : 's'}), found ${hex(head.readUInt32BE(0))}`);
  }
  if (head.length < headerBytes) {
    throw new InputError('INPUT_FORMAT', input.file, `expected a ${headerBytes}-byte IDX ${what} header, found ${head.length} ${kind}bytes in all`);
  }
  const dims: number[] = [];
  for (let d = 0; d < ndims; d++) dims.push(head.readUInt32BE(4 + 4 * d));
  const dataBytes = dims.reduce((a, b) => a * b, 1);
  return { dims, headerBytes, dataBytes };
}

function sizeError(input: InputFile, h: IdxHeader, found: number): InputError {
  const kind = input.gzip ? 'decompressed ' : '';
  return new InputError(
    'INPUT_FORMAT',
    input.file,
    `expected ${h.headerBytes + h.dataBytes} ${kind}bytes (${h.headerBytes}-byte header + ${h.dims.join(' x ')} bytes of data), found ${found}`,
  );
}

export interface IdxOptions {
  /** Bytes per read from each file, in records; default 1024. */
  batchRows?: number;
}

/** Images and their labels, paired row by row. DenseRow.line is the 1-based item number. */
export class IdxParser implements RowSource<DenseRow> {
  readonly file: string;
  readonly labelsFile: string;
  private readonly batchRows: number;
  private images: InputFile | undefined;
  private labels: InputFile | undefined;
  /** Known once reading has started. */
  count = 0;
  rowsPerImage = 0;
  colsPerImage = 0;

  constructor(imagesFile: string, labelsFile: string, options: IdxOptions = {}) {
    this.file = imagesFile;
    this.labelsFile = labelsFile;
    this.batchRows = options.batchRows ?? BATCH_ROWS;
  }

  get bytesRead(): number {
    return (this.images?.consumed() ?? 0) + (this.labels?.consumed() ?? 0);
  }

  get totalBytes(): number {
    return (this.images?.size ?? 0) + (this.labels?.size ?? 0);
  }

  /** Pixels per image. */
  get features(): number {
    return this.rowsPerImage * this.colsPerImage;
  }

  /** Opens both files and checks their headers against each other; rowBatches() calls it. */
  async open(): Promise<void> {
    if (this.images) return;
    this.images = await openInput(this.file);
    this.labels = await openInput(this.labelsFile);
  }

  rows(): AsyncGenerator<DenseRow> {
    return rowsOf(this.rowBatches());
  }

  async *rowBatches(): AsyncGenerator<DenseRow[]> {
    await this.open();
    const images = this.images!;
    const labels = this.labels!;
    const img = new ByteReader(images);
    const lab = new ByteReader(labels);
    try {
      const ih = await readHeader(img, images, IDX_IMAGES_MAGIC, 'image');
      const lh = await readHeader(lab, labels, IDX_LABELS_MAGIC, 'label');
      // Plain files can be checked against their size before any row is produced.
      if (!images.gzip && images.size !== ih.headerBytes + ih.dataBytes) throw sizeError(images, ih, images.size);
      if (!labels.gzip && labels.size !== lh.headerBytes + lh.dataBytes) throw sizeError(labels, lh, labels.size);
      const [n, rows, cols] = ih.dims as [number, number, number];
      if (lh.dims[0] !== n) {
        throw new InputError('INPUT_FORMAT', this.file, `expected as many images as ${this.labelsFile} has labels (${lh.dims[0]}), found ${n}`);
      }
      this.count = n;
      this.rowsPerImage = rows;
      this.colsPerImage = cols;
      const pixels = rows * cols;
      for (let done = 0; done < n; ) {
        const take = Math.min(this.batchRows, n - done);
        const lbytes = await lab.read(take);
        if (lbytes.length < take) throw sizeError(labels, lh, lh.headerBytes + done + lbytes.length);
        const labelsCopy = Uint8Array.from(lbytes);
        const ibytes = await img.read(take * pixels);
        if (ibytes.length < take * pixels) throw sizeError(images, ih, ih.headerBytes + done * pixels + ibytes.length);
        const out: DenseRow[] = new Array(take);
        for (let r = 0; r < take; r++) {
          const x = new Float32Array(pixels);
          const off = r * pixels;
          for (let j = 0; j < pixels; j++) x[j] = SCALED[ibytes[off + j]!]!;
          out[r] = { label: labelsCopy[r]!, x, line: done + r + 1 };
        }
        done += take;
        yield out;
      }
      // A gzipped file longer than its header declares shows only at the end.
      const extraImg = await img.drain();
      if (extraImg > 0) throw sizeError(images, ih, ih.headerBytes + ih.dataBytes + extraImg);
      const extraLab = await lab.drain();
      if (extraLab > 0) throw sizeError(labels, lh, lh.headerBytes + lh.dataBytes + extraLab);
    } finally {
      await img.close();
      await lab.close();
    }
  }
}

/** Rows of an IDX image file and its label file, one at a time. */
export function parseIdx(imagesFile: string, labelsFile: string, options: IdxOptions = {}): AsyncGenerator<DenseRow> {
  return new IdxParser(imagesFile, labelsFile, options).rows();
}

/** The label file that goes with an image file by the MNIST naming convention ('images-idx3' -> 'labels-idx1'). */
export function labelsFileFor(imagesFile: string): string | undefined {
  const swapped = imagesFile.replace(/images-idx3(?!.*images-idx3)/, 'labels-idx1');
  return swapped === imagesFile ? undefined : swapped;
}

export const FASHION_MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

export const FASHION_MNIST_LABEL_NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export interface FashionMnist {
  dir: string;
  files: Record<keyof typeof FASHION_MNIST_FILES, string>;
  train: IdxParser;
  test: IdxParser;
}

/**
 * Finds the four (Fashion-)MNIST files in `dir`, each plain or with '.gz' (plain preferred, it
 * reads faster); names every missing one.
 */
export async function loadFashionMnistDir(dir: string, options: IdxOptions = {}): Promise<FashionMnist> {
  let entries: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new InputError('INPUT_MISSING', dir, 'expected a directory holding the Fashion-MNIST files, found a file');
    entries = await readdir(dir);
  } catch (err) {
    if (err instanceof InputError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InputError('INPUT_MISSING', dir, 'no such directory', {}, { cause: err });
    throw err;
  }
  const present = new Set(entries);
  const files: Partial<Record<keyof typeof FASHION_MNIST_FILES, string>> = {};
  const missing: string[] = [];
  for (const [key, base] of Object.entries(FASHION_MNIST_FILES) as Array<[keyof typeof FASHION_MNIST_FILES, string]>) {
    const name = present.has(base) ? base : present.has(`${base}.gz`) ? `${base}.gz` : undefined;
    if (name === undefined) missing.push(`${base}(.gz)`);
    else files[key] = join(dir, name);
  }
  if (missing.length > 0) {
    const found = entries.filter((e) => /idx\d-ubyte/.test(e));
    throw new InputError(
      'INPUT_MISSING',
      dir,
      `missing ${missing.join(', ')} (expected the four files ${Object.values(FASHION_MNIST_FILES).join(', ')}, each plain or .gz; found ${found.length > 0 ? found.join(', ') : 'none of them'})`,
    );
  }
  const f = files as Record<keyof typeof FASHION_MNIST_FILES, string>;
  return {
    dir,
    files: f,
    train: new IdxParser(f.trainImages, f.trainLabels, options),
    test: new IdxParser(f.testImages, f.testLabels, options),
  };
}
