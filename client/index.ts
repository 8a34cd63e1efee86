/** The client room: the stateful side (API, CLI, cost accounting). */
export { channelCostUsd, lambdaCostUsd, loadPrices, DEFAULT_PRICES_FILE, PricesError, type Prices } from './cost.js';
export { buildProgram, main } from './cli.js';
