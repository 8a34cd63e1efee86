/**
 * What the line-based parsers (libsvm, CSV, Criteo, ratings) share: the file they read, how far
 * reading got (for progress), and the loop that turns line batches into row batches.
 */
import { openInput, readLineBatches, rowsOf, type InputFile, type RowSource } from './lines.js';

export abstract class LineParser<R> implements RowSource<R> {
  readonly file: string;
  private input: InputFile | undefined;
  private lastBytes = 0;

  constructor(file: string) {
    this.file = file;
  }

  get bytesRead(): number {
    return this.lastBytes;
  }

  get totalBytes(): number {
    return this.input?.size ?? 0;
  }

  rows(): AsyncGenerator<R> {
    return rowsOf(this.rowBatches());
  }

  abstract rowBatches(): AsyncGenerator<R[]>;

  /**
   * Opens the file and yields, per batch of lines, the rows `parse` makes of them (null: the line
   * carries no row). Empty batches are not yielded.
   */
  protected async *parseLines<T>(parse: (text: string, line: number) => T | null): AsyncGenerator<T[]> {
    this.input = await openInput(this.file);
    for await (const batch of readLineBatches(this.input)) {
      const out: T[] = [];
      for (let i = 0; i < batch.lines.length; i++) {
        const row = parse(batch.lines[i]!, batch.firstNumber + i);
        if (row !== null) out.push(row);
      }
      this.lastBytes = batch.bytesRead[batch.bytesRead.length - 1]!;
      if (out.length > 0) yield out;
    }
  }
}
