/**
 * The config a parameter-server model is created with. Types only, in a module of their own so
 * that the model (model.ts) and its optimizers (optimizers.ts) both use them without importing
 * each other. validateModelConfig in model.ts checks them at the wire and snapshot boundaries.
 */
export type OptimizerConfig = {
  type: 'sgd' | 'momentum' | 'nesterov' | 'adagrad' | 'adam';
  learningRate: number;
  momentum?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  l2?: number;
};
export type SyncConfig = { mode: 'async' } | { mode: 'ssp'; workers: number; staleness: number } | { mode: 'bsp'; workers: number; reduce?: 'sum' | 'mean' };
export interface ModelConfig {
  size: number;
  optimizer: OptimizerConfig;
  sync: SyncConfig;
}
