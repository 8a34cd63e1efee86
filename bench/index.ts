/** Benchmarks (not tests): each prints a table with side-by-side ratios and writes JSON to bench/results/. */
export { benchChannels, lambdaMlComparison, LAMBDAML_BEST_MS, type ChannelBenchOptions, type ChannelBenchRow } from './channels.js';
export { runCollective, roundTimes, percentile, type RunConfig, type RunResult } from './collective-runner.js';
export { machineInfo, type MachineInfo } from './machine.js';
export { addBenchCommands } from './cli.js';
