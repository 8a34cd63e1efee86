/**
 * What a CSV's labels are: one pass over the label column counts its distinct cells, then
 *
 * - integers 0..k-1 with few distinct values (at most MAX_INFERRED_CLASSES): classes as they are
 *   (0/1 binary, more multiclass);
 * - other integers with few distinct values (e.g. 1..5, or -1/+1): classes in numeric order,
 *   named by their text;
 * - any other numbers (fractions, many distinct integers): regression;
 * - any cell that is not a number: classes, named by the cells, in sorted order.
 *
 * The caller's `task` overrides the inference where the labels allow it. The counts per class
 * also give the stratified split and the row count that chooses the rows per shard.
 */
import { CsvParser, PreprocessOptionsError, quote, parseNumber } from '../../algorithms/index.js';
import type { DatasetTask } from '../../channels/index.js';

/** More distinct integer labels than this are taken as numbers (regression) unless --task says otherwise. */
const MAX_INFERRED_CLASSES = 50;

interface LabelScan {
  file: string;
  rows: number;
  /** Rows per distinct label cell (trimmed text). */
  counts: Map<string, number>;
}

interface LabelPlan {
  task: DatasetTask;
  classes: number;
  /** Class names by index, when cells are mapped to indices (strings, or integers outside 0..k-1). */
  labelNames?: string[];
  /** Cell -> stored label; undefined for cells of no class (only with labelNames). */
  labelOf?: (text: string) => number | undefined;
  labelExpected?: string;
  /** What was inferred and why, for the user. */
  reason: string;
  /** Rows per stored label (classification), for the stratified split. */
  classCounts: Map<number, number>;
}

/** Reads the label column of a CSV file once (features are parsed too, so their errors surface here). */
export async function scanLabels(file: string, options: { labelColumn?: string | number; delimiter?: string; categorical?: string[] }): Promise<LabelScan> {
  const counts = new Map<string, number>();
  let rows = 0;
  const parser = new CsvParser(file, {
    ...options,
    labelOf: (text) => {
      counts.set(text, (counts.get(text) ?? 0) + 1);
      return 0;
    },
  });
  for await (const batch of parser.rowBatches()) rows += batch.length;
  return { file, rows, counts };
}

const byNumber = (a: string, b: string) => parseNumber(a) - parseNumber(b);
const byName = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

/** Infers the task from the scan, applying the caller's `task` (and `classes`) over it. */
export function planLabels(scan: LabelScan, want: { task?: DatasetTask; classes?: number } = {}): LabelPlan {
  const cells = [...scan.counts.keys()];
  const numbers = cells.map(parseNumber);
  const numeric = numbers.every((n) => !Number.isNaN(n));
  const integers = numeric && numbers.every(Number.isInteger);
  const distinct = cells.length;
  const override = (inferred: string) => (want.task ? ` (--task ${want.task} given; the labels alone would be ${inferred})` : ` (pass --task to choose otherwise)`);
  const bad = (m: string): never => {
    throw new PreprocessOptionsError(`task: ${scan.file}: ${m}`);
  };

  if (numeric && (want.task === 'regression' || (!want.task && !(integers && distinct <= MAX_INFERRED_CLASSES)))) {
    const why = !integers ? `non-integer numbers (e.g. ${firstNonInteger(cells)})` : `${distinct} distinct integers, more than ${MAX_INFERRED_CLASSES}`;
    return { task: 'regression', classes: 0, reason: `labels: ${why} -> regression${override(integers && distinct <= MAX_INFERRED_CLASSES ? 'classes' : 'regression')}`, classCounts: new Map() };
  }
  if (want.task === 'regression') bad(`regression needs numeric labels, found ${quote(cells.find((c) => Number.isNaN(parseNumber(c)))!)}`);
  if (numeric && !integers) bad(`${want.task} needs class labels, found non-integer numbers (e.g. ${firstNonInteger(cells)}); use --task regression`);

  // Classes. Integers 0..k-1 stay as they are; anything else is mapped to indices by name.
  const values = numbers as number[];
  const identity = integers && values.every((v) => v >= 0) && Math.max(...values) < Math.max(MAX_INFERRED_CLASSES, want.classes ?? 0);
  const classCounts = new Map<number, number>();
  let labelNames: string[] | undefined;
  let labelOf: LabelPlan['labelOf'];
  let classes: number;
  let what: string;
  if (identity) {
    classes = Math.max(2, Math.max(...values) + 1, want.classes ?? 0);
    cells.forEach((c, i) => classCounts.set(values[i]!, (classCounts.get(values[i]!) ?? 0) + scan.counts.get(c)!));
    what = `${distinct} distinct integers ${Math.min(...values)}..${Math.max(...values)}`;
  } else {
    labelNames = [...cells].sort(numeric ? byNumber : byName);
    const index = new Map(labelNames.map((n, i) => [n, i]));
    labelOf = (text) => index.get(text);
    classes = Math.max(2, labelNames.length);
    labelNames.forEach((n, i) => classCounts.set(i, scan.counts.get(n)!));
    const shown = labelNames.slice(0, 10).map((n) => quote(n)).join(', ') + (labelNames.length > 10 ? ', ...' : '');
    what = numeric ? `${distinct} distinct integers (${shown}), mapped to classes 0..${distinct - 1} in numeric order` : `${distinct} distinct strings (${shown}), mapped to classes 0..${distinct - 1} in sorted order`;
  }
  if (want.classes !== undefined && want.classes < classes) bad(`--classes ${want.classes} is fewer than the ${classes} classes the labels hold`);
  const inferred: DatasetTask = classes === 2 ? 'binary' : 'multiclass';
  const task = want.task ?? inferred;
  if (task === 'binary' && classes > 2) bad(`binary needs two classes, found ${classes} (${what}); use --task multiclass`);
  const plan: LabelPlan = {
    task,
    classes: task === 'binary' ? 2 : classes,
    reason: `labels: ${what} -> ${task}${task === 'binary' ? '' : `, ${classes} classes`}${override(inferred)}`,
    classCounts,
  };
  if (labelNames) {
    plan.labelNames = labelNames;
    plan.labelOf = labelOf!;
    const shown = labelNames.slice(0, 10).map((n) => quote(n)).join(', ') + (labelNames.length > 10 ? ', ...' : '');
    plan.labelExpected = `one of the training labels ${shown}`;
  }
  return plan;
}

function firstNonInteger(cells: string[]): string {
  return quote(cells.find((c) => !Number.isInteger(parseNumber(c))) ?? cells[0]!);
}
