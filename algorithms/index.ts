/** The algorithms room: column statistics and feature transforms (models and optimisers follow). */
export {
  StatsError,
  emptyStats,
  finalizeStats,
  mergeAll,
  mergeStats,
  shardStats,
  statsFromJSON,
  statsToJSON,
  type FinalStats,
  type PartialStats,
  type PartialStatsJSON,
  type StatsErrorCode,
} from './stats.js';
export { TransformError, minMaxScale, zScore, type TransformErrorCode } from './transforms.js';
