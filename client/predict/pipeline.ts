/**
 * A model's input pipeline: what turns a raw row of the file it was trained from into the row the
 * model saw. Read from the dataset's manifest when training ends and saved inside model.json, so
 * a loaded model predicts raw rows by itself: the input's columns (and which one is the label),
 * feature names and order, the hashing specification, the scaling statistics fitted on the train
 * split, the task and the class names.
 */
import { z } from 'zod';
import { columnStats, datasetTask, type DatasetManifest } from '../../channels/index.js';
import type { FinalStats } from '../../algorithms/index.js';

const INPUT_PIPELINE_VERSION = 1;

const hashSpec = z
  .object({
    columns: z.array(z.string()),
    bits: z.number().int().min(1).max(31),
    seed: z.number().int(),
    bias: z.boolean(),
    numeric: z.array(z.string()),
    numericTransform: z.enum(['none', 'log1p']),
  })
  .strict();

export const inputPipelineSchema = z
  .object({
    version: z.literal(INPUT_PIPELINE_VERSION),
    /** The preprocess format of the raw input: 'csv', 'criteo', 'libsvm', 'idx', 'fashion-mnist'. */
    format: z.string(),
    kind: z.enum(['dense', 'sparse']),
    task: datasetTask,
    classes: z.number().int().nonnegative(),
    features: z.number().int().positive(),
    /** Dense features in model order (CSV header names). */
    featureNames: z.array(z.string()).optional(),
    /** Class names by class index (string labels, or a mapped set of integers). */
    labelNames: z.array(z.string()).optional(),
    /** CSV: the raw file's layout. */
    csv: z
      .object({
        delimiter: z.string().min(1),
        header: z.array(z.string()).nullable(),
        columns: z.number().int().positive(),
        labelColumn: z.number().int().nonnegative(),
      })
      .strict()
      .optional(),
    hash: hashSpec.optional(),
    /** Scaling fitted on the train split; applied after parsing (and hashing). */
    scale: z
      .object({ type: z.enum(['zscore', 'minmax']), lo: z.number().optional(), hi: z.number().optional(), stats: columnStats })
      .strict()
      .optional(),
    /** A fixed factor the parser applied (IDX pixels: 1/255). */
    pixelScale: z.number().optional(),
  })
  .strict();

export type InputPipeline = z.infer<typeof inputPipelineSchema>;

/** Reads a stored object's JSON (the fitted statistics a sparse dataset keeps beside its shards). */
type ReadJson = (key: string) => Promise<unknown>;

/**
 * The pipeline of a dataset, or undefined when its rows have no raw form a model could take
 * (ratings). `readJson` fetches fitted statistics the manifest names but does not hold.
 */
async function pipelineOfDataset(m: DatasetManifest, readJson: ReadJson): Promise<InputPipeline | undefined> {
  if (m.kind === 'ratings' || m.features === 0) return undefined;
  const p: InputPipeline = {
    version: INPUT_PIPELINE_VERSION,
    format: m.source?.format ?? 'unknown',
    kind: m.kind,
    task: m.task,
    classes: m.classes,
    features: m.features,
  };
  if (m.featureNames) p.featureNames = m.featureNames;
  if (m.labelNames) p.labelNames = m.labelNames;
  for (const t of m.transforms) {
    switch (t.type) {
      case 'input':
        if (t.format === 'csv') {
          p.csv = { delimiter: String(t.delimiter), header: (t.header as string[] | null) ?? null, columns: Number(t.columns), labelColumn: Number(t.labelColumn) };
        }
        break;
      case 'hash': {
        const numeric = t.numeric as { columns: string[]; transform?: 'none' | 'log1p' };
        p.hash = {
          columns: t.columns as string[],
          bits: Number(t.bits),
          seed: Number(t.seed ?? 0),
          bias: t.bias !== false && t.bias !== undefined,
          numeric: numeric.columns,
          numericTransform: numeric.transform ?? 'none',
        };
        break;
      }
      case 'scale':
        p.pixelScale = Number(t.factor);
        break;
      case 'zscore':
      case 'minmax': {
        const stats = (t.fitted ?? (typeof t.fittedKey === 'string' ? await readJson(t.fittedKey) : undefined)) as FinalStats | undefined;
        if (!stats) throw new Error(`dataset '${m.name}': the ${t.type} step names no fitted statistics`);
        p.scale = { type: t.type, ...(t.type === 'minmax' ? { lo: Number(t.lo), hi: Number(t.hi) } : {}), stats: columnStats.parse(stats) };
        break;
      }
    }
  }
  return p;
}

/** The pipeline of a dataset whose objects (fitted statistics) live in `objects`. */
export function pipelineFromStore(objects: { get(key: string): Promise<Uint8Array | undefined> }, m: DatasetManifest): Promise<InputPipeline | undefined> {
  return pipelineOfDataset(m, async (key) => {
    const bytes = await objects.get(key);
    if (!bytes) throw new Error(`dataset '${m.name}': its fitted statistics ${key} are missing`);
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  });
}
