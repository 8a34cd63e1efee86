/** Typed errors of the dataset layer; `code` is stable for callers to switch on. */
import { CirrusError } from '../../paramserver/index.js';

export type DatasetErrorCode =
  /** A dataset name that DATASET_NAME rejects. */
  | 'DATASET_NAME'
  /** createWriter() without overwrite on a dataset that has a manifest. */
  | 'DATASET_EXISTS'
  | 'DATASET_NOT_FOUND'
  /** A manifest that is not JSON, fails the schema, or contradicts itself. */
  | 'DATASET_MANIFEST'
  /** A shard that is missing, or whose bytes do not match its manifest entry. */
  | 'DATASET_SHARD'
  /** An upload failed; nothing of the writer's run is left in the store. */
  | 'DATASET_UPLOAD'
  /** A writer used out of order (addShard after commit, commit twice, abort after commit). */
  | 'DATASET_WRITER'
  /** Fewer shards than workers: some worker would get no data. */
  | 'DATASET_TOO_FEW_SHARDS'
  /** Invalid options (rank outside the world, batch size 0, ...). */
  | 'DATASET_ARGUMENT';

export class DatasetError extends CirrusError<DatasetErrorCode> {}
