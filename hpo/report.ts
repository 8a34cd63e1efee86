/**
 * `renderReport(data)`: one self-contained HTML page for a search or a job -- loss and accuracy
 * against time (one line per trial), cost against accuracy (one point per finished trial), a legend
 * and a table sorted by the objective. The charts are SVG written here, so the page has no script,
 * fetches nothing and opens offline; the data is embedded as JSON for anyone who wants it back.
 */
import { FRAME, Plot, esc, extent, fmt, niceTicks, padded } from './report-svg.js';
import type { ReportData, ReportPoint, ReportRun } from './report-data.js';

// Ten hues far apart, then golden-angle hues, so neighbours in the legend never look alike.
const PALETTE = ['#1f77b4', '#e6550d', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#636363', '#bcbd22', '#17becf'];

function colorOf(index: number): string {
  return index < PALETTE.length ? PALETTE[index]! : `hsl(${Math.round((index * 137.508) % 360)} 65% 42%)`;
}

/** Trials that did not run to the end are drawn dashed and faded, so the finished ones stand out. */
const STOPPED: Record<string, string> = { pruned: '7 4', killed: '2 3', failed: '2 3', stopped: '7 4' };

interface Styled {
  run: ReportRun;
  color: string;
  dash: string | undefined;
}

type Series = 'testLoss' | 'testAccuracy';

/** The run's points that have a finite value of `series`, in time order. */
function curvePoints(run: ReportRun, series: Series): { t: number; v: number }[] {
  return run.history
    .filter((p) => Number.isFinite(p.wallSeconds) && isNum(p[series]))
    .map((p) => ({ t: p.wallSeconds, v: p[series] as number }))
    .sort((a, b) => a.t - b.t);
}

function isNum(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** The value the search ranks by: the final metric, else the best seen in the history. */
function objectiveValue(run: ReportRun, data: ReportData): number | undefined {
  const { metric, mode } = data.objective;
  const final = run.metrics?.[metric];
  if (isNum(final)) return final;
  const seen = run.history.map((p: ReportPoint) => p[metric]).filter(isNum);
  if (seen.length === 0) return undefined;
  return mode === 'max' ? Math.max(...seen) : Math.min(...seen);
}

/** Runs best first; runs with nothing to rank by last, in their original order. */
function rankRuns(data: ReportData): ReportRun[] {
  const sign = data.objective.mode === 'max' ? -1 : 1;
  return data.runs
    .map((run, i) => ({ run, i, v: objectiveValue(run, data) }))
    .sort((a, b) => {
      if (a.v === undefined || b.v === undefined) return a.v === undefined ? (b.v === undefined ? a.i - b.i : 1) : -1;
      return sign * (a.v - b.v) || a.i - b.i;
    })
    .map((r) => r.run);
}

function bestAccuracy(run: ReportRun): number | undefined {
  const all = [...run.history.map((p) => p.testAccuracy), run.metrics?.testAccuracy].filter(isNum);
  return all.length ? Math.max(...all) : undefined;
}

function finalLoss(run: ReportRun): number | undefined {
  if (isNum(run.metrics?.testLoss)) return run.metrics.testLoss;
  const losses = curvePoints(run, 'testLoss');
  return losses.length ? losses[losses.length - 1]!.v : undefined;
}

/** The accuracy the run ended with: its metrics, else its last evaluation (a run stopped early). */
function lastAccuracy(run: ReportRun): number | undefined {
  if (isNum(run.metrics?.testAccuracy)) return run.metrics.testAccuracy;
  const points = run.history.map((p) => p.testAccuracy).filter(isNum);
  return points.length ? points[points.length - 1] : undefined;
}

/** Final accuracy used by the scatter: the run's metrics only, i.e. trials that finished. */
function finalAccuracy(run: ReportRun): number | undefined {
  return isNum(run.metrics?.testAccuracy) ? run.metrics.testAccuracy : undefined;
}

function lineChart(styled: Styled[], series: Series, yTitle: string): string {
  const curves = styled.map((s) => ({ ...s, points: curvePoints(s.run, series) })).filter((c) => c.points.length > 0);
  const x = niceTicks(extent([0, ...curves.flatMap((c) => c.points.map((p) => p.t))]));
  const y = niceTicks(padded(extent(curves.flatMap((c) => c.points.map((p) => p.v)))));
  const plot = new Plot(FRAME, x, y);
  const body = curves.map(({ run, color, dash, points }) => {
    const coords = points.map((p) => `${fmt(plot.px(p.t))},${fmt(plot.py(p.v))}`);
    const last = points[points.length - 1]!;
    const attrs = `data-trial="${esc(run.id)}" data-status="${esc(run.status)}" stroke="${color}"${dash ? ` stroke-dasharray="${dash}"` : ''}`;
    const tip = `<title>${esc(`${run.id} (${run.status}) ${run.label}\n${series} ${last.v.toPrecision(4)} at ${last.t.toFixed(1)} s`)}</title>`;
    return (
      `<g class="run${dash ? ' stopped' : ''}">` +
      `<polyline class="curve" data-series="${series}" data-points="${points.length}" ${attrs} points="${coords.join(' ')}">${tip}</polyline>` +
      // A one-point history would be an invisible line; the end marker always shows.
      `<circle class="end" data-trial="${esc(run.id)}" cx="${fmt(plot.px(last.t))}" cy="${fmt(plot.py(last.v))}" r="3" fill="${color}">${tip}</circle>` +
      `</g>`
    );
  });
  const empty = curves.length === 0 ? `<text class="empty" x="${FRAME.width / 2}" y="${FRAME.height / 2}" text-anchor="middle">no evaluations yet</text>` : '';
  return svg(`chart-${series}`, plot.axes('wall-clock seconds since the trial started', yTitle) + body.join('') + empty);
}

function scatter(styled: Styled[], bestId: string | undefined): string {
  const points = styled
    .map((s) => ({ ...s, acc: finalAccuracy(s.run), cost: s.run.costUsd }))
    .filter((p): p is typeof p & { acc: number; cost: number } => isNum(p.acc) && isNum(p.cost));
  const x = niceTicks(padded(extent([0, ...points.map((p) => p.cost)])));
  const y = niceTicks(padded(extent(points.map((p) => p.acc))));
  const plot = new Plot(FRAME, x, y);
  const body = points.map(({ run, color, dash, acc, cost }) => {
    const cx = fmt(plot.px(cost));
    const cy = fmt(plot.py(acc));
    const tip = `<title>${esc(`${run.id} (${run.status}) ${run.label}\naccuracy ${pct(acc)}, cost ${usd(cost)}`)}</title>`;
    const ring = run.id === bestId ? `<circle class="best-ring" cx="${cx}" cy="${cy}" r="9" stroke="${color}"/>` : '';
    return (
      `<g class="run${dash ? ' stopped' : ''}">${ring}` +
      `<circle class="point" data-trial="${esc(run.id)}" data-status="${esc(run.status)}" data-accuracy="${acc}" data-cost="${cost}" cx="${cx}" cy="${cy}" r="5" fill="${color}">${tip}</circle>` +
      `<text class="point-label" x="${fmt(plot.px(cost) + 8)}" y="${cy}" dy="0.32em">${esc(run.id)}</text></g>`
    );
  });
  const empty = points.length === 0 ? `<text class="empty" x="${FRAME.width / 2}" y="${FRAME.height / 2}" text-anchor="middle">no finished trial with a cost yet</text>` : '';
  return svg('chart-cost', plot.axes('cost (USD)', 'final test accuracy') + body.join('') + empty);
}

function svg(id: string, content: string): string {
  return `<svg id="${id}" class="chart" viewBox="0 0 ${FRAME.width} ${FRAME.height}" role="img">${content}</svg>`;
}

function legend(styled: Styled[]): string {
  const items = styled.map(({ run, color, dash }) => {
    const swatch = `<svg class="swatch" viewBox="0 0 28 10" width="28" height="10"><line x1="1" y1="5" x2="27" y2="5" stroke="${color}" stroke-width="3"${dash ? ` stroke-dasharray="${dash}"` : ''}/></svg>`;
    return `<li data-trial="${esc(run.id)}" class="${dash ? 'stopped' : ''}">${swatch}<b>${esc(run.id)}</b> <span class="status status-${esc(run.status)}">${esc(run.status)}</span> <span class="params">${esc(short(run.label, 90))}</span></li>`;
  });
  return `<ul class="legend">${items.join('')}</ul>`;
}

function table(data: ReportData, ranked: ReportRun[], styled: Map<string, Styled>, bestId: string | undefined): string {
  // k-means and matrix factorization have no accuracy (always 0): their table shows losses only.
  const accuracy = data.accuracy !== false;
  const head = ['#', 'Trial', 'Params', 'Status', 'Epochs', ...(accuracy ? ['Final accuracy', 'Best accuracy'] : []), 'Final test loss', 'Cost', 'Worker-seconds', 'Note'];
  const rows = ranked.map((run, i) => {
    const s = styled.get(run.id)!;
    const epochs = run.metrics?.epochs ?? (run.history.length ? Math.max(...run.history.map((p) => p.epoch)) : undefined);
    const cells = [
      String(i + 1),
      `<span class="dot" style="background:${s.color}"></span>${esc(run.id)}${run.id === bestId ? ' <span class="star" title="best">&#9733;</span>' : ''}`,
      `<code>${esc(run.label)}</code>`,
      `<span class="status status-${esc(run.status)}">${esc(run.status)}</span>`,
      epochs === undefined ? '&ndash;' : String(epochs),
      ...(accuracy ? [opt(lastAccuracy(run), pct), opt(bestAccuracy(run), pct)] : []),
      opt(finalLoss(run), (v) => v.toFixed(4)),
      opt(run.costUsd, usd),
      opt(run.workerSeconds, (v) => v.toFixed(1)),
      run.error ? esc(short(run.error, 160)) : '',
    ];
    const cls = [run.id === bestId ? 'best' : '', s.dash ? 'stopped' : ''].filter(Boolean).join(' ');
    return `<tr data-trial="${esc(run.id)}" data-status="${esc(run.status)}"${cls ? ` class="${cls}"` : ''}>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
  });
  const caption = `sorted by ${esc(data.objective.metric)} (${data.objective.mode === 'max' ? 'highest' : 'lowest'} first)`;
  return `<table id="trials"><caption>${caption}</caption><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function opt(v: number | undefined, f: (v: number) => string): string {
  return isNum(v) ? esc(f(v)) : '&ndash;';
}

function pct(v: number): string {
  return `${(v * 100).toFixed(2)}%`;
}

function usd(v: number): string {
  return v === 0 ? '$0' : v >= 0.01 ? `$${v.toFixed(4)}` : `$${v.toPrecision(3)}`;
}

function short(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}\u2026` : s;
}

/** JSON that cannot end the <script> element it sits in, nor open a comment. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function summary(data: ReportData, ranked: ReportRun[], bestId: string | undefined): string {
  const counts = new Map<string, number>();
  for (const r of data.runs) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  const best = ranked.find((r) => r.id === bestId);
  const bestValue = best ? objectiveValue(best, data) : undefined;
  const facts: [string, string][] = [
    ['Status', esc(data.status)],
    ['Objective', `${esc(data.objective.mode)} ${esc(data.objective.metric)}`],
    [data.kind === 'search' ? 'Trials' : 'Runs', `${data.runs.length} (${[...counts].map(([s, n]) => `${n} ${esc(s)}`).join(', ')})`],
    ...(best && bestValue !== undefined
      ? [['Best', `<b>${esc(best.id)}</b>: ${esc(data.objective.metric)} ${data.objective.metric === 'testAccuracy' ? pct(bestValue) : bestValue.toFixed(4)} &mdash; <code>${esc(best.label)}</code>`] as [string, string]]
      : []),
    ...(data.createdAt ? [['Started', esc(data.createdAt)] as [string, string]] : []),
    ...(data.updatedAt ? [['Updated', esc(data.updatedAt)] as [string, string]] : []),
  ];
  return `<dl class="summary">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:24px 0 6px}
.summary{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
.summary dt{color:#666}.summary dd{margin:0}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:8px 24px}
.chart{width:100%;height:auto;display:block}
.chart .grid{stroke:#e6e6e6;stroke-width:1}.chart .frame{fill:none;stroke:#999}
.chart .tick{font-size:12px;fill:#555}.chart .axis-title{font-size:13px;fill:#333}
.chart .curve{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
.chart .stopped{opacity:.5}.chart .empty{fill:#999;font-size:13px}
.chart .point{stroke:#fff;stroke-width:1.5}.chart .best-ring{fill:none;stroke-width:2}
.chart .point-label{font-size:11px;fill:#444}
.legend{list-style:none;padding:0;margin:4px 0;columns:2 360px}
.legend li{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}.legend li.stopped{opacity:.6}
.swatch{vertical-align:middle;margin-right:6px}
.params,code{font:12px ui-monospace,Menlo,Consolas,monospace;color:#444}
table{border-collapse:collapse;width:100%;font-size:13px}caption{text-align:left;color:#666;padding:4px 0}
th,td{border-bottom:1px solid #e3e3e3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6}td:nth-child(n+5):not(:last-child){text-align:right;font-variant-numeric:tabular-nums}
tr.best{background:#fff6d5;font-weight:600}tr.stopped{color:#888}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px}
.star{color:#d4a000}
.status{padding:0 6px;border-radius:8px;background:#eee;font-size:12px}
.status-done{background:#dff3df}.status-running{background:#dde9fb}.status-failed{background:#fbdada}
.status-pruned,.status-killed,.status-stopped{background:#eee;color:#777}
footer{margin-top:24px;color:#888;font-size:12px}
`;

/** The whole page. Pure: the same data gives the same bytes. */
export function renderReport(data: ReportData): string {
  const styled: Styled[] = data.runs.map((run, i) => ({ run, color: colorOf(i), dash: STOPPED[run.status] }));
  const byId = new Map(styled.map((s) => [s.run.id, s]));
  const ranked = rankRuns(data);
  const bestId = ranked.length && objectiveValue(ranked[0]!, data) !== undefined ? ranked[0]!.id : undefined;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,">
<title>${esc(data.title)} &ndash; Cirrus report</title>
<style>${CSS}</style></head>
<body data-kind="${data.kind}" data-id="${esc(data.id)}">
<h1>${esc(data.title)}</h1>
${summary(data, ranked, bestId)}
<h2>Curves</h2>
${legend(styled)}
<div class="charts">
<figure><figcaption>Test loss vs time</figcaption>${lineChart(styled, 'testLoss', 'test loss')}</figure>
${
  data.accuracy === false
    ? ''
    : `<figure><figcaption>Test accuracy vs time</figcaption>${lineChart(styled, 'testAccuracy', 'test accuracy')}</figure>
<figure><figcaption>Cost vs final accuracy (finished trials)</figcaption>${scatter(styled, bestId)}</figure>`
}
</div>
<h2>Trials</h2>
${table(data, ranked, byId, bestId)}
<footer>Generated by cirrus report from ${esc(data.source)}. Dashed, faded lines: trials that were pruned, killed, stopped or failed.</footer>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
</body></html>
`;
}
