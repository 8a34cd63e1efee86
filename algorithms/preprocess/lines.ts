/**
 * Streaming input: opens a file (gunzipping it when it starts with the gzip magic) and reads it
 * chunk by chunk, so memory stays bounded by the chunk size and the longest line, never by the file.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { InputError } from './errors.js';

const CHUNK_BYTES = 1 << 20;
/** A line longer than this is a wrong format (e.g. a binary file), not data: refuse it before it eats memory. */
export const DEFAULT_MAX_LINE_BYTES = 64 << 20;

export interface InputFile {
  file: string;
  /** Size of the file on disk (compressed size for gzip). */
  size: number;
  gzip: boolean;
  /** Decompressed bytes, in chunks. */
  chunks(): AsyncGenerator<Buffer>;
  /** Bytes of the file on disk consumed so far, for progress over `size`. */
  consumed(): number;
}

/** Opens `file` for streaming; a missing file gives INPUT_MISSING naming it. */
export async function openInput(file: string): Promise<InputFile> {
  let size: number;
  let gzip = false;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new InputError('INPUT_MISSING', file, 'expected a file, found a directory or other non-file');
    size = st.size;
    const fh = await open(file, 'r');
    try {
      const head = Buffer.alloc(2);
      const { bytesRead } = await fh.read(head, 0, 2, 0);
      gzip = bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InputError('INPUT_MISSING', file, 'no such file', {}, { cause: err });
    throw err;
  }
  let consumed = 0;
  async function* raw(): AsyncGenerator<Buffer> {
    const stream = createReadStream(file, { highWaterMark: CHUNK_BYTES });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        consumed += chunk.length;
        yield chunk;
      }
    } finally {
      stream.destroy();
    }
  }
  async function* gunzipped(): AsyncGenerator<Buffer> {
    const gunzip = createGunzip({ chunkSize: CHUNK_BYTES });
    // The pipeline's promise settles when the source ends or fails; errors also reach the iterator.
    const pumping = pipeline(Readable.from(raw()), gunzip).catch(() => undefined);
    try {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) yield chunk;
    } catch (err) {
      const zcode = (err as NodeJS.ErrnoException).code;
      if (typeof zcode !== 'string' || !zcode.startsWith('Z_')) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new InputError('INPUT_FORMAT', file, `expected valid gzip data, found corrupt or truncated gzip (${reason})`, {}, { cause: err });
    } finally {
      gunzip.destroy();
      await pumping;
    }
  }
  return { file, size, gzip, chunks: gzip ? gunzipped : raw, consumed: () => consumed };
}

export interface Line {
  /** The line without its '\n' or '\r\n' (and without a UTF-8 byte order mark on line 1). */
  line: string;
  /** 1-based line number. */
  number: number;
  /**
   * Bytes of the file on disk consumed so far: exact (the end of this line) for plain files, at
   * chunk granularity for gzip files, whose decompressed offsets do not map to file offsets.
   */
  bytesRead: number;
}

export interface LineOptions {
  maxLineBytes?: number;
}

/**
 * Lines of a file, every one of them, blank lines included (callers decide what a blank line
 * means), '\n' or '\r\n' endings, a last line without newline included.
 */
export async function* readLines(input: InputFile | string, options: LineOptions = {}): AsyncGenerator<Line> {
  for await (const batch of readLineBatches(input, options)) {
    for (let i = 0; i < batch.lines.length; i++) {
      yield { line: batch.lines[i]!, number: batch.firstNumber + i, bytesRead: batch.bytesRead[i]! };
    }
  }
}

export interface LineBatch {
  lines: string[];
  /** Line number of lines[0]. */
  firstNumber: number;
  /** bytesRead after each line (see Line.bytesRead). */
  bytesRead: number[];
}

/**
 * The same lines as readLines, a decompressed chunk's worth at a time: parsers loop over a batch
 * synchronously, which keeps the per-line cost of async iteration off the hot path.
 */
export async function* readLineBatches(input: InputFile | string, options: LineOptions = {}): AsyncGenerator<LineBatch> {
  const src = typeof input === 'string' ? await openInput(input) : input;
  const maxLine = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let number = 1;
  let offset = 0; // decompressed bytes before the current chunk
  // A line split across chunks is kept as a list of pieces, so a long line costs one concat, not one per chunk.
  let pieces: Buffer[] = [];
  let piecesBytes = 0;
  const finishLine = (text: string): string => {
    if (text.charCodeAt(text.length - 1) === 13) text = text.slice(0, -1);
    if (number === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return text;
  };
  for await (const chunk of src.chunks()) {
    const lines: string[] = [];
    const bytesRead: number[] = [];
    const firstNumber = number;
    let start = 0;
    let nl = chunk.indexOf(10, start);
    while (nl !== -1) {
      let text: string;
      if (pieces.length > 0) {
        pieces.push(chunk.subarray(start, nl));
        piecesBytes += nl - start;
        if (piecesBytes > maxLine) throw overlong(src.file, number, maxLine);
        text = Buffer.concat(pieces, piecesBytes).toString('utf8');
        pieces = [];
        piecesBytes = 0;
      } else {
        if (nl - start > maxLine) throw overlong(src.file, number, maxLine);
        text = chunk.toString('utf8', start, nl);
      }
      lines.push(finishLine(text));
      bytesRead.push(src.gzip ? src.consumed() : offset + nl + 1);
      number++;
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) {
      pieces.push(chunk.subarray(start));
      piecesBytes += chunk.length - start;
      if (piecesBytes > maxLine) throw overlong(src.file, number, maxLine);
    }
    offset += chunk.length;
    if (lines.length > 0) yield { lines, firstNumber, bytesRead };
  }
  // The last line without a final newline is still a line.
  if (piecesBytes > 0) {
    yield { lines: [finishLine(Buffer.concat(pieces, piecesBytes).toString('utf8'))], firstNumber: number, bytesRead: [src.gzip ? src.consumed() : offset] };
  }
}

function overlong(file: string, line: number, max: number): InputError {
  return new InputError('INPUT_FORMAT', file, `expected a text line of at most ${max} bytes, found a longer one (is this a binary file or the wrong format?)`, { line });
}

/** What every parser offers: its rows in batches (one per input chunk) or one by one, and progress. */
export interface RowSource<R> {
  /** The input path as given, used in every message. */
  readonly file: string;
  /** Bytes of the input file(s) on disk consumed so far. */
  readonly bytesRead: number;
  /** Total bytes of the input file(s) on disk, known once reading has started. */
  readonly totalBytes: number;
  rowBatches(): AsyncGenerator<R[]>;
  rows(): AsyncGenerator<R>;
}

/** Flattens batches into single rows (for callers that want rows one at a time). */
export async function* rowsOf<R>(batches: AsyncGenerator<R[]>): AsyncGenerator<R> {
  for await (const batch of batches) for (const row of batch) yield row;
}

const HAS_DIGIT = /\d/;

/**
 * Parses a decimal number strictly: NaN for anything Number() would turn into 0 without a digit
 * (empty or blank cells) and for non-finite values ('NaN', 'Infinity'), which no model can use.
 */
export function parseNumber(text: string): number {
  const v = Number(text);
  if (v === 0 && !HAS_DIGIT.test(text)) return NaN;
  return Number.isFinite(v) ? v : NaN;
}

/** Exact powers of ten: every 10^k for k <= 22 is a double without rounding. */
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

/**
 * parseNumber(text.slice(start, end)) without the slice. Plain decimals (sign, at most 15
 * significant digits, fraction, exponent) take a fast path that is still correctly rounded: the
 * digits form an integer below 2^53 and one multiplication or division by an exact power of ten
 * rounds once, as Number() does. Anything else goes to Number().
 */
export function parseDecimal(text: string, start: number, end: number): number {
  let i = start;
  let c = text.charCodeAt(i);
  let negative = false;
  if (c === 45 || c === 43) {
    negative = c === 45;
    c = text.charCodeAt(++i);
  }
  let mantissa = 0;
  let digits = 0;
  let scale = 0;
  while (i < end && c >= 48 && c <= 57) {
    mantissa = mantissa * 10 + (c - 48);
    digits++;
    c = text.charCodeAt(++i);
  }
  if (i < end && c === 46) {
    c = text.charCodeAt(++i);
    while (i < end && c >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits++;
      scale--;
      c = text.charCodeAt(++i);
    }
  }
  if (i < end && (c === 101 || c === 69) && digits > 0) {
    c = text.charCodeAt(++i);
    let expNegative = false;
    if (c === 45 || c === 43) {
      expNegative = c === 45;
      c = text.charCodeAt(++i);
    }
    let exp = 0;
    let expDigits = 0;
    while (i < end && c >= 48 && c <= 57 && expDigits < 6) {
      exp = exp * 10 + (c - 48);
      expDigits++;
      c = text.charCodeAt(++i);
    }
    if (expDigits === 0) return parseNumber(text.slice(start, end));
    scale += expNegative ? -exp : exp;
  }
  if (i !== end || digits === 0 || digits > 15 || scale < -22 || scale > 22) return parseNumber(text.slice(start, end));
  const v = scale < 0 ? mantissa / POW10[-scale]! : mantissa * POW10[scale]!;
  return negative ? -v : v;
}

/** True when the line holds nothing but spaces and tabs. */
export function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9) return false;
  }
  return true;
}
