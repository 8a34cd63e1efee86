/**
 * The HTML report of a search or a job: the pure renderer on synthetic data (exact counts,
 * escaping, empty histories), loading from real stores, and the written page rendered in headless
 * Chromium (Debian's `chromium`), checked in the live DOM and as a screenshot.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { MemoryObjectStore, openObjectStore, type ObjectStore } from '../channels/object-stores/index.js';
import { openStore } from '../client/store.js';
import { renderReport } from '../hpo/report.js';
import { writeReport } from '../hpo/report-cli.js';
import { ReportError, loadReportData, type ReportData, type ReportErrorCode } from '../hpo/report-data.js';
import { niceTicks } from '../hpo/report-svg.js';
import { currentRate } from '../hpo/live-view.js';
import { runCli } from './support/cli.js';
import { skipOrFail } from './support/skip-or-fail.js';

// ---------------------------------------------------------------------------------------------
// Synthetic records, in exactly the shapes the search and train() write.

const XSS = '<script>window.__xss=1</script>';

function epochs(n: number, opts: { lossFrom?: number; accFrom?: number; dt?: number } = {}) {
  const { lossFrom = 1.2, accFrom = 0.5, dt = 2.5 } = opts;
  return Array.from({ length: n }, (_, i) => ({
    epoch: i + 1,
    step: (i + 1) * 10,
    wallSeconds: (i + 1) * dt,
    trainLoss: lossFrom - 0.1 * i + 0.02,
    testLoss: lossFrom - 0.1 * i,
    testAccuracy: accFrom + 0.05 * i,
  }));
}

function metricsOf(h: ReturnType<typeof epochs>) {
  const last = h[h.length - 1]!;
  return { testAccuracy: last.testAccuracy, testLoss: last.testLoss, trainLoss: last.trainLoss, epochs: last.epoch, steps: last.step, wallSeconds: last.wallSeconds, updatesPerSec: 4, generations: 1 };
}

function cost(usd: number, workerSeconds: number) {
  return { usd, workerUsd: usd * 0.9, channelUsd: 0, storeUsd: usd * 0.1, workerGbSeconds: workerSeconds, invocations: 2, channelRequests: 100, channelBytes: 1000, workerSeconds };
}

const h1 = epochs(5, { accFrom: 0.6 }); // best: 0.8 final
const h2 = epochs(3, { accFrom: 0.55 }); // 0.65 final
const h3 = epochs(2, { accFrom: 0.4 });
const h6 = [
  { epoch: 1, step: 5, wallSeconds: 1.5, trainLoss: 2.1, testLoss: 2.0, testAccuracy: 0.2 },
  // Diverged: JSON turned NaN into null. The loss curve skips it, the accuracy curve keeps it.
  { epoch: 2, step: 10, wallSeconds: 3, trainLoss: null, testLoss: null, testAccuracy: 0.1 },
];

const SEARCH_ID = 'search-7f3a';
const searchState = {
  searchId: SEARCH_ID,
  kind: 'grid',
  objective: { metric: 'testAccuracy', mode: 'max' },
  config: { base: { dataset: 'fmnist' }, grid: { lr: [0.1, 0.01] } },
  createdAt: '2025-01-02T03:04:05.000Z',
  updatedAt: '2025-01-02T03:14:05.000Z',
  status: 'done',
  extraFieldFromANewerWriter: true,
  trials: [
    { id: 't001', params: { lr: 0.1, batchSize: 32 }, status: 'done', jobId: 'j1', epoch: 5, history: h1, metrics: metricsOf(h1), cost: cost(0.0012, 40), startedAt: 1, endedAt: 2 },
    { id: 't002', params: { lr: 0.01, note: XSS }, status: 'done', jobId: 'j2', epoch: 3, history: h2, metrics: metricsOf(h2), cost: cost(0.0008, 25) },
    { id: 't003', params: { lr: 1, batchSize: 32 }, status: 'pruned', jobId: 'j3', epoch: 2, history: h3, cost: cost(0.0003, 9) },
    { id: 't004', params: { lr: 5, batchSize: 64 }, status: 'failed', jobId: 'j4', history: [], error: 'worker crashed <oops>' },
    { id: 't005', params: { lr: 0.001, batchSize: 64 }, status: 'pending', history: [] },
    { id: 't006', params: { lr: 10, batchSize: 64 }, status: 'running', jobId: 'j6', epoch: 2, history: h6 },
  ],
};

const JOB_ID = 'job-42';
const hj = epochs(4, { accFrom: 0.7, dt: 10 });
const jobRecord = {
  jobId: JOB_ID,
  params: { dataset: 'fmnist', model: 'softmax', lr: 0.05, workers: 2 },
  status: 'done',
  startedAt: '2025-01-02T03:04:05.000Z',
  updatedAt: '2025-01-02T03:05:05.000Z',
  history: hj,
  metrics: metricsOf(hj),
  cost: cost(0.0021, 80),
};

/** Loss curves per trial (points) and accuracy curves, as the data says they must be drawn. */
const LOSS_POINTS = { t001: 5, t002: 3, t003: 2, t006: 1 };
const ACC_POINTS = { t001: 5, t002: 3, t003: 2, t006: 2 };
const SCATTER = ['t001', 't002'];
const TABLE_ORDER = ['t001', 't002', 't003', 't006', 't004', 't005'];

const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

async function memoryData(): Promise<ReportData> {
  const store = new MemoryObjectStore();
  await store.put(`searches/${SEARCH_ID}/state.json`, bytes(searchState));
  return loadReportData(store, SEARCH_ID);
}

/** data-trial -> data-points of every curve of one series, from the HTML text. */
function curvesIn(html: string, series: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of html.matchAll(/<polyline class="curve" data-series="(\w+)" data-points="(\d+)" data-trial="([^"]+)"/g)) {
    if (m[1] === series) out[m[3]!] = Number(m[2]);
  }
  return out;
}

function reportError(code: ReportErrorCode, ...includes: string[]) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ReportError, `expected a ReportError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const s of includes) assert.ok(err.message.includes(s), `message '${err.message}' should name '${s}'`);
    return true;
  };
}

// ---------------------------------------------------------------------------------------------

describe('live view: updates/s', () => {
  it('is the rate over the last epoch, not an average since the start that climbs every epoch', () => {
    // 2 s of start-up, then 100 steps per second: the average since start would read 33, 50, 60.
    const history = [
      { step: 100, wallSeconds: 3 },
      { step: 200, wallSeconds: 4 },
      { step: 300, wallSeconds: 5 },
    ];
    assert.equal(currentRate(history.slice(0, 1)), '33.3', 'the first epoch has only the start to measure from');
    assert.equal(currentRate(history.slice(0, 2)), '100.0');
    assert.equal(currentRate(history), '100.0');
    assert.equal(currentRate([]), undefined);
  });
});

describe('report: renderer', () => {
  it('niceTicks picks 1-2-5 steps and widens to whole steps', () => {
    assert.deepEqual(niceTicks({ min: 0, max: 9.3 }), { domain: { min: 0, max: 10 }, values: [0, 2, 4, 6, 8, 10], decimals: 0 });
    assert.deepEqual(niceTicks({ min: 0.31, max: 0.52 }), { domain: { min: 0.3, max: 0.55 }, values: [0.3, 0.35, 0.4, 0.45, 0.5, 0.55], decimals: 2 });
    // One value (a single point) gets room around it instead of a zero-width axis.
    assert.deepEqual(niceTicks({ min: 2, max: 2 }).values, [1.8, 1.9, 2, 2.1, 2.2]);
    assert.deepEqual(niceTicks(undefined).values, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  it('draws one curve per trial with evaluations, with exact point counts, and one scatter point per finished trial', async () => {
    const html = renderReport(await memoryData());
    assert.deepEqual(curvesIn(html, 'testLoss'), LOSS_POINTS);
    assert.deepEqual(curvesIn(html, 'testAccuracy'), ACC_POINTS);
    const points = [...html.matchAll(/<circle class="point" data-trial="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(points, SCATTER);
    // Stopped trials are dashed.
    assert.match(html, /data-trial="t003" data-status="pruned" stroke="[^"]+" stroke-dasharray="7 4"/);
    assert.doesNotMatch(html, /data-trial="t001" data-status="done" stroke="[^"]+" stroke-dasharray/);
  });

  it('lists every trial in the table, sorted by the objective, the best highlighted', async () => {
    const html = renderReport(await memoryData());
    const rows = [...html.matchAll(/<tr data-trial="([^"]+)" data-status="(\w+)"( class="([^"]*)")?>/g)];
    assert.deepEqual(rows.map((r) => r[1]), TABLE_ORDER);
    assert.equal(rows[0]![4], 'best');
    assert.equal(rows.filter((r) => r[4]?.includes('best')).length, 1);
    assert.ok(html.includes('<td>$0.00120</td>'), 'cost of t001');
    assert.ok(html.includes('<td>40.0</td>'), 'worker-seconds of t001');
    assert.ok(html.includes('<td>80.00%</td>'), 'best accuracy of t001');
  });

  it('shows each trial\'s final and best accuracy side by side', async () => {
    const data = await memoryData();
    const html = renderReport(data);
    assert.match(html, /<th>Epochs<\/th><th>Final accuracy<\/th><th>Best accuracy<\/th>/);
    for (const run of data.runs) {
      const row = new RegExp(`<tr data-trial="${run.id}"[^>]*>(.*?)</tr>`).exec(html)![1]!;
      const cells = [...row.matchAll(/<td>(.*?)<\/td>/g)].map((m) => m[1]);
      const accs = run.history.map((h) => h.testAccuracy).filter((a): a is number => typeof a === 'number');
      const metric = typeof run.metrics?.testAccuracy === 'number' ? run.metrics.testAccuracy : undefined;
      const final = metric ?? accs[accs.length - 1];
      const all = [...accs, ...(metric !== undefined ? [metric] : [])];
      const best = all.length ? Math.max(...all) : undefined;
      const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '&ndash;' : `${(100 * v).toFixed(2)}%`);
      assert.equal(cells[5], pct(final), `final accuracy of ${run.id}`);
      assert.equal(cells[6], pct(best), `best accuracy of ${run.id}`);
    }
  });

  it('escapes every string from the data, in the markup and in the embedded JSON', async () => {
    const html = renderReport(await memoryData());
    assert.equal(html.split('<script').length - 1, 1, 'only the JSON data block is a script');
    assert.ok(!html.includes('window.__xss=1</script>'));
    assert.ok(html.includes('note=&#60;script&#62;window.__xss=1&#60;/script&#62;'));
    assert.ok(html.includes('worker crashed &#60;oops&#62;'));
    const json = /<script type="application\/json" id="report-data">(.*)<\/script>/s.exec(html)![1]!;
    const back = JSON.parse(json) as ReportData;
    assert.equal(back.runs.find((r) => r.id === 't002')!.label, `lr=0.01, note=${XSS}`);
  });

  it('renders a single job and runs with no history at all', async () => {
    const store = new MemoryObjectStore();
    await store.put(`jobs/${JOB_ID}/record.json`, bytes(jobRecord));
    const job = await loadReportData(store, JOB_ID);
    assert.equal(job.kind, 'job');
    assert.equal(job.source, `jobs/${JOB_ID}/record.json in memory://`);
    const html = renderReport(job);
    assert.deepEqual(curvesIn(html, 'testLoss'), { [JOB_ID]: 4 });
    assert.deepEqual([...html.matchAll(/<circle class="point" data-trial="([^"]+)"/g)].map((m) => m[1]), [JOB_ID]);

    const empty: ReportData = { ...job, runs: [{ id: 'p1', label: 'lr=1', status: 'pending', history: [] }, { id: 'p2', label: 'lr=2', status: 'failed', history: [], error: 'boom' }] };
    const page = renderReport(empty);
    assert.equal(page.match(/<polyline/g), null);
    assert.equal(page.match(/no evaluations yet/g)!.length, 2);
    assert.equal(page.match(/<tr data-trial=/g)!.length, 2);
    assert.ok(!page.includes('class="best"'), 'nothing to rank, nothing highlighted');
  });

  it('shows a k-means job by its loss only: no accuracy curve, scatter or columns', async () => {
    const store = new MemoryObjectStore();
    await store.put(`jobs/${JOB_ID}/record.json`, bytes({ ...jobRecord, params: { ...jobRecord.params, model: 'kmeans', clusters: 10 } }));
    const job = await loadReportData(store, JOB_ID);
    assert.equal(job.accuracy, false);
    assert.deepEqual(job.objective, { metric: 'testLoss', mode: 'min' });
    const html = renderReport(job);
    assert.deepEqual(curvesIn(html, 'testLoss'), { [JOB_ID]: 4 });
    assert.deepEqual(curvesIn(html, 'testAccuracy'), {});
    assert.equal(html.match(/<circle class="point"/g), null);
    assert.ok(!html.includes('Final accuracy') && !html.includes('Test accuracy vs time'), 'no accuracy anywhere');
    // The softmax job of the same record keeps them.
    await store.put(`jobs/${JOB_ID}/record.json`, bytes(jobRecord));
    const softmax = renderReport(await loadReportData(store, JOB_ID));
    assert.ok(softmax.includes('Final accuracy') && softmax.includes('Test accuracy vs time'));
  });
});

describe('report: loading', () => {
  it('names both keys and the store when the id is unknown', async () => {
    await assert.rejects(loadReportData(new MemoryObjectStore(), 'nope'), reportError('REPORT_NOT_FOUND', "'nope'", 'searches/nope/state.json', 'jobs/nope/record.json', 'memory://'));
  });

  it('names the key and the field of a bad record', async () => {
    const store = new MemoryObjectStore();
    const bad = structuredClone(searchState) as { trials: { history: Record<string, unknown>[] }[] };
    bad.trials[0]!.history[1]!.testLoss = 'high';
    await store.put('searches/s1/state.json', bytes(bad));
    await assert.rejects(loadReportData(store, 's1'), reportError('REPORT_BAD_RECORD', 'searches/s1/state.json', "'trials[0].history[1].testLoss'"));
    await store.put('jobs/j1/record.json', new TextEncoder().encode('{"jobId": '));
    await assert.rejects(loadReportData(store, 'j1'), reportError('REPORT_BAD_RECORD', 'jobs/j1/record.json', 'not valid JSON'));
    const noHistory = { ...jobRecord, history: undefined };
    await store.put('jobs/j2/record.json', bytes(noHistory));
    await assert.rejects(loadReportData(store, 'j2'), reportError('REPORT_BAD_RECORD', 'jobs/j2/record.json', "'history'"));
  });

  it('loads a search by AUC: its best trial is the one with the highest test AUC', async () => {
    const store = new MemoryObjectStore();
    const withAuc = (h: typeof h1, auc: number) => h.map((p, i) => ({ ...p, testAuc: auc - 0.01 * (h.length - 1 - i) }));
    const trials = [
      { ...searchState.trials[0]!, history: withAuc(h1, 0.8), metrics: { ...metricsOf(h1), testAuc: 0.8 } },
      { ...searchState.trials[1]!, history: withAuc(h2, 0.9), metrics: { ...metricsOf(h2), testAuc: 0.9 } },
    ];
    await store.put('searches/auc/state.json', bytes({ ...searchState, searchId: 'auc', objective: { metric: 'testAuc', mode: 'max' }, trials }));
    const data = await loadReportData(store, 'auc');
    assert.deepEqual(data.objective, { metric: 'testAuc', mode: 'max' });
    assert.match(renderReport(data), /<b>t002<\/b>: testAuc 0\.9000/);
  });

  it('refuses ids that would read another key', async () => {
    await assert.rejects(loadReportData(new MemoryObjectStore(), '../x'), reportError('REPORT_BAD_ID', "'../x'"));
    await assert.rejects(loadReportData(new MemoryObjectStore(), ''), reportError('REPORT_BAD_ID'));
  });
});

// ---------------------------------------------------------------------------------------------
// Headless Chromium

function findChromium(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of ['chromium', 'chromium-browser']) {
      const p = join(dir, name);
      if (dir && existsSync(p)) return p;
    }
  }
  return undefined;
}

const CHROMIUM = findChromium();
const chromiumMissing = CHROMIUM ? undefined : "Debian's chromium is not installed (apt-get install chromium)";

async function chromium(profile: string, args: string[]): Promise<string> {
  if (!CHROMIUM) throw new Error("chromium is not on PATH: install Debian's chromium package (.ci/run does)");
  const { stdout } = await promisify(execFile)(
    CHROMIUM,
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--no-default-browser-check', '--disable-extensions', `--user-data-dir=${profile}`, ...args],
    { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

/**
 * Test-only script appended to a copy of the page: reads the live DOM (SVG elements as parsed and
 * laid out by the browser) into a <pre>, which --dump-dom then prints.
 */
const PROBE = `<script>
(() => {
  const q = (s) => [...document.querySelectorAll(s)];
  const curve = (el) => ({ trial: el.dataset.trial, series: el.dataset.series, declared: Number(el.dataset.points),
    parsed: el.points.numberOfItems, svg: el instanceof SVGPolylineElement, length: el.getTotalLength(),
    height: el.getBBox().height, stroke: getComputedStyle(el).stroke });
  const out = {
    curves: q('polyline.curve').map(curve),
    points: q('#chart-cost circle.point').map((el) => ({ trial: el.dataset.trial, svg: el instanceof SVGCircleElement, r: el.r.baseVal.value })),
    rows: q('#trials tbody tr').map((tr) => tr.dataset.trial),
    best: q('#trials tr.best').map((tr) => tr.dataset.trial),
    xTicks: q('#chart-testLoss text.tick[data-axis=x]').map((t) => t.textContent),
    scripts: document.scripts.length,
    xss: typeof window.__xss,
    t002Params: document.querySelector('#trials tr[data-trial=t002] code')?.textContent ?? null,
    chartWidth: document.querySelector('#chart-testLoss').getBoundingClientRect().width,
  };
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
})();
</script>`;

interface Probe {
  curves: { trial: string; series: string; declared: number; parsed: number; svg: boolean; length: number; height: number; stroke: string }[];
  points: { trial: string; svg: boolean; r: number }[];
  rows: string[];
  best: string[];
  xTicks: string[];
  scripts: number;
  xss: string;
  t002Params: string | null;
  chartWidth: number;
}

async function probe(profile: string, htmlPath: string, dir: string): Promise<Probe> {
  const html = await readFile(htmlPath, 'utf8');
  const probed = join(dir, 'probed.html');
  await writeFile(probed, html.replace('</body>', `${PROBE}</body>`));
  const dom = await chromium(profile, ['--dump-dom', pathToFileURL(probed).href]);
  const m = /<pre id="probe">(.*?)<\/pre>/s.exec(dom);
  assert.ok(m, `no probe output in the dumped DOM:\n${dom.slice(0, 2000)}`);
  return JSON.parse(m[1]!.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as Probe;
}

function byTrial(p: Probe, series: string): Record<string, number> {
  return Object.fromEntries(p.curves.filter((c) => c.series === series).map((c) => [c.trial, c.parsed]));
}

describe('report: written and rendered in headless Chromium', () => {
  let tmp: string;
  let storeDir: string;
  let objects: ObjectStore;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'cirrus-report-'));
    storeDir = join(tmp, 'store');
    objects = await openObjectStore(pathToFileURL(storeDir).href);
    await objects.put(`searches/${SEARCH_ID}/state.json`, bytes(searchState));
    await objects.put(`jobs/${JOB_ID}/record.json`, bytes(jobRecord));
  });

  after(async () => {
    await objects?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('`cirrus report <searchId>` writes the page atomically at the default path and prints it', async () => {
    const out = join(tmp, 'out');
    await rm(out, { recursive: true, force: true });
    await mkdir(out);
    // The real command line: bin/cirrus.js joins the hpo room's commands to the client's.
    const run = await runCli(['report', SEARCH_ID, '--store', pathToFileURL(storeDir).href], { cwd: out });
    assert.equal(run.code, 0, run.stderr);
    const printed = run.stdout.trim().split('\n');
    const expected = join(out, `cirrus-report-${SEARCH_ID}.html`);
    assert.deepEqual(printed, [join(await realpath(out), `cirrus-report-${SEARCH_ID}.html`)]);
    assert.deepEqual(await readdir(out), [`cirrus-report-${SEARCH_ID}.html`], 'no temp file left behind');
    const html = await readFile(expected, 'utf8');
    assert.deepEqual(curvesIn(html, 'testLoss'), LOSS_POINTS);
  });

  it('the rendered DOM has one curve per trial with history, the right points, the scatter and the table', { timeout: 180_000 }, async (t) => {
    if (skipOrFail(t, chromiumMissing)) return;
    const { path } = await writeReport(SEARCH_ID, { store: pathToFileURL(storeDir).href, cwd: tmp, out: 'search.html' });
    const html = await readFile(path, 'utf8');
    assert.equal(html.match(/https?:\/\//g), null, 'no http(s) reference anywhere: the page works offline');
    assert.equal(html.match(/\b(src|href)="(?!data:)/g), null, 'no external src/href');

    const profile = await mkdtemp(join(tmp, 'profile-'));
    const p = await probe(profile, path, tmp);
    assert.deepEqual(byTrial(p, 'testLoss'), LOSS_POINTS);
    assert.deepEqual(byTrial(p, 'testAccuracy'), ACC_POINTS);
    for (const c of p.curves) {
      assert.ok(c.svg, `${c.trial}: a real SVG polyline`);
      assert.equal(c.parsed, c.declared, `${c.trial}: data-points matches the parsed points`);
      if (c.parsed > 1) assert.ok(c.length > 0 && c.height > 0, `${c.trial} ${c.series}: laid out with a length (${c.length}) and height (${c.height})`);
      assert.notEqual(c.stroke, 'none');
    }
    assert.equal(new Set(p.curves.filter((c) => c.series === 'testLoss').map((c) => c.stroke)).size, 4, 'each trial its own color');
    assert.deepEqual(p.points.map((x) => [x.trial, x.svg, x.r]), SCATTER.map((t) => [t, true, 5]));
    assert.deepEqual(p.rows, TABLE_ORDER);
    assert.deepEqual(p.best, ['t001']);
    assert.deepEqual(p.xTicks, ['0', '5', '10', '15'], 'the slowest trial ends at 12.5 s');
    assert.equal(p.scripts, 2, 'the JSON block and the probe; the param value did not become a script');
    assert.equal(p.xss, 'undefined');
    assert.equal(p.t002Params, `lr=0.01, note=${XSS}`);
    assert.ok(p.chartWidth > 100, `chart laid out (${p.chartWidth}px wide)`);
  });

  it('a job id from the embedded S3 store renders with one curve, and a screenshot is a 1200x900 PNG', { timeout: 180_000 }, async (t) => {
    if (skipOrFail(t, chromiumMissing)) return;
    const home = join(tmp, 'home');
    const handle = await openStore(undefined, home);
    try {
      await handle.datasets.store.put(`jobs/${JOB_ID}/record.json`, bytes(jobRecord));
    } finally {
      await handle.close();
    }
    const { path, data } = await writeReport(JOB_ID, { home, cwd: tmp });
    assert.equal(path, join(tmp, `cirrus-report-${JOB_ID}.html`));
    assert.equal(data.runs.length, 1);
    // The embedded server's address is gone once the command ends: the page names the directory.
    assert.equal(data.source, `jobs/${JOB_ID}/record.json in the embedded store in ${home}`);
    assert.doesNotMatch(await readFile(path, 'utf8'), /127\.0\.0\.1|endpoint=/);
    const profile = await mkdtemp(join(tmp, 'profile-'));
    const p = await probe(profile, path, tmp);
    assert.deepEqual(byTrial(p, 'testLoss'), { [JOB_ID]: 4 });
    assert.deepEqual(byTrial(p, 'testAccuracy'), { [JOB_ID]: 4 });
    assert.deepEqual(p.points.map((x) => x.trial), [JOB_ID]);
    assert.deepEqual(p.rows, [JOB_ID]);

    // Screenshot of the search page (kept under $CIRRUS_REPORT_SHOTS when set, for a human look).
    const shots = process.env.CIRRUS_REPORT_SHOTS ?? join(tmp, 'shots');
    await mkdir(shots, { recursive: true });
    const page = (await writeReport(SEARCH_ID, { store: pathToFileURL(storeDir).href, cwd: tmp, out: 'shot.html' })).path;
    const png = join(shots, 'report.png');
    await chromium(profile, ['--hide-scrollbars', '--window-size=1200,900', `--screenshot=${png}`, pathToFileURL(page).href]);
    const img = await readFile(png);
    assert.deepEqual([...img.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
    assert.equal(img.toString('latin1', 12, 16), 'IHDR');
    assert.deepEqual([img.readUInt32BE(16), img.readUInt32BE(20)], [1200, 900]);
    assert.ok(img.length > 10_000, `a page with content, not a blank image (${img.length} bytes)`);
  });

  it('unknown ids fail with the store that was searched', async () => {
    await assert.rejects(writeReport('missing', { store: pathToFileURL(storeDir).href, cwd: tmp }), reportError('REPORT_NOT_FOUND', 'searches/missing/state.json', 'jobs/missing/record.json', pathToFileURL(storeDir).href));
    assert.ok(!existsSync(join(tmp, 'cirrus-report-missing.html')));
  });
});
