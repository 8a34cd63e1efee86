/**
 * What `cirrus grid-search` shows while a search runs. On a TTY: a table redrawn in place, one
 * row per trial (cli-progress MultiBar lines whose format is the row), and a progress bar over the
 * whole search. Elsewhere (pipes, CI logs): one plain line per trial event.
 */
import cliProgress from 'cli-progress';
import { channelKindOf, loadPrices, trainCost, type Prices, type TrainParams } from '../client/index.js';
import { formatObjective, isLossOnlyModel, objectiveValue, type Objective } from './objective.js';
import { sortTrials, type SearchEvent } from './search.js';
import type { TrialState } from './state.js';

interface LiveView {
  update(event: SearchEvent): void;
  stop(): void;
}

const DONE: ReadonlyArray<TrialState['status']> = ['done', 'failed', 'killed', 'pruned'];

function formatParams(p: Record<string, unknown>): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(3)) : JSON.stringify(v)}`)
    .join(' ');
}

/**
 * What the trial has cost so far: its final estimate once done; while it runs, the same cost
 * function over what is known at its last epoch: every worker busy since the start, the channel's
 * server up as long (request counts arrive only with the workers' results).
 */
export function costSoFar(trial: TrialState, params: TrainParams, prices: Prices): number | undefined {
  if (trial.cost) return trial.cost.usd;
  const last = trial.history[trial.history.length - 1];
  if (!last) return undefined;
  const workerDurationsMs = new Array<number>(params.workers).fill(last.wallSeconds * 1000);
  // A Lambda launcher's memory is read from its function when the trial starts: a lower bound until then.
  return trainCost({ workerDurationsMs, memoryMb: params.launcher.memoryMb ?? 0, channelKind: channelKindOf(params.channel), wallSeconds: last.wallSeconds, storeGets: 0 }, prices).usd;
}

/**
 * Updates per second over the trial's last epoch: the rate it runs at now. An average since the
 * trial's start would climb every epoch as its fixed start-up time is spread thinner.
 */
export function currentRate(history: ReadonlyArray<{ step: number; wallSeconds: number }>): string | undefined {
  const last = history[history.length - 1];
  if (!last) return undefined;
  const prev = history[history.length - 2] ?? { step: 0, wallSeconds: NaN };
  // The first epoch has no earlier point but the start, which includes the start-up.
  const dt = last.wallSeconds - (Number.isNaN(prev.wallSeconds) ? 0 : prev.wallSeconds);
  return dt > 0 ? ((last.step - prev.step) / dt).toFixed(1) : undefined;
}

interface Row {
  id: string;
  params: string;
  status: string;
  epoch: string;
  loss: string;
  acc: string;
  ups: string;
  cost: string;
}

function rowOf(t: TrialState, params: TrainParams, prices: Prices): Row {
  const last = t.history[t.history.length - 1];
  const m = t.metrics;
  const cost = costSoFar(t, params, prices);
  return {
    id: t.id,
    params: formatParams(t.params),
    status: t.status,
    epoch: t.epoch !== undefined ? `${t.epoch}/${params.epochs}` : '-',
    loss: m ? m.testLoss.toFixed(4) : last ? last.testLoss.toFixed(4) : '-',
    // k-means and MF have no accuracy (always 0).
    acc: isLossOnlyModel(params.model) ? '-' : m ? `${(100 * m.testAccuracy).toFixed(2)}%` : last ? `${(100 * last.testAccuracy).toFixed(2)}%` : '-',
    ups: currentRate(t.history) ?? (m ? m.updatesPerSec.toFixed(1) : '-'),
    cost: cost !== undefined ? `$${cost.toExponential(2)}` : '-',
  };
}

const COLUMNS: Array<[keyof Row, string, number]> = [
  ['id', 'trial', 5],
  ['params', 'params', 0],
  ['status', 'status', 8],
  ['epoch', 'epoch', 7],
  ['loss', 'loss', 7],
  ['acc', 'accuracy', 8],
  ['ups', 'updates/s', 9],
  ['cost', 'cost', 10],
];

export function createLiveView(opts: { trials: TrialState[]; paramsOf: (id: string) => TrainParams; objective: Objective; tty: boolean; write: (line: string) => void; stream?: NodeJS.WritableStream }): LiveView {
  const prices = loadPrices();
  const trials = new Map(opts.trials.map((t) => [t.id, t]));
  const finished = () => [...trials.values()].filter((t) => DONE.includes(t.status)).length;
  if (!opts.tty) {
    return {
      update(e) {
        if (e.type === 'search') return opts.write(`search ${e.status}`);
        trials.set(e.trial.id, e.trial);
        const r = rowOf(e.trial, opts.paramsOf(e.trial.id), prices);
        if (e.type === 'epoch') return opts.write(`${r.id} epoch ${e.logs.epoch}: loss ${r.loss}, accuracy ${r.acc}, ${r.ups} updates/s, cost ${r.cost}`);
        const extra = e.trial.status === 'running' && e.trial.jobId ? ` job ${e.trial.jobId}` : e.trial.error ? `: ${e.trial.error}` : e.trial.metrics ? `: accuracy ${r.acc}, loss ${r.loss}` : '';
        opts.write(`${r.id} ${e.trial.status}${extra} (${r.params}) [${finished()}/${trials.size} finished]`);
      },
      stop() {},
    };
  }
  const paramsWidth = Math.max(6, ...opts.trials.map((t) => formatParams(t.params).length));
  const width = (w: number) => (w === 0 ? paramsWidth : w);
  const line = (cells: Record<string, string>) => COLUMNS.map(([key, , w]) => (cells[key] ?? '').padEnd(width(w))).join('  ');
  const multi = new cliProgress.MultiBar({ clearOnComplete: false, hideCursor: true, stream: opts.stream ?? process.stdout, forceRedraw: true, autopadding: false }, cliProgress.Presets.shades_classic);
  // Table lines are bars whose format ignores the bar and prints the row (pre-padded).
  multi.create(1, 0, {}, { format: line(Object.fromEntries(COLUMNS.map(([k, h]) => [k, h]))) });
  const rows = new Map(opts.trials.map((t) => [t.id, multi.create(1, 0, { text: line({ ...rowOf(t, opts.paramsOf(t.id), prices) }) }, { format: '{text}' })]));
  // The best finished trial by the search's objective, as the search ranks them.
  const objective = opts.objective;
  const overall = multi.create(opts.trials.length, finished(), { best: '-' }, { format: `search {bar} {value}/{total} trials finished | best ${objective.metric} {best}` });

  return {
    update(e) {
      if (e.type === 'search') return;
      trials.set(e.trial.id, e.trial);
      rows.get(e.trial.id)?.update(0, { text: line({ ...rowOf(e.trial, opts.paramsOf(e.trial.id), prices) }) });
      const top = sortTrials(objective, [...trials.values()])[0];
      const best = top?.status === 'done' ? top : undefined;
      overall.update(finished(), { best: best ? `${best.id} ${formatObjective(objective, objectiveValue(objective, best.metrics))}` : '-' });
    },
    stop() {
      multi.stop();
    },
  };
}
