/**
 * Synthetic Criteo-like and HIGGS-like generators: deterministic bytes per seed, exact row counts,
 * the real column layouts, power-law categories, and a planted model that is informative.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { GenerateError, generateCriteoLike, type CriteoTruth } from '../client/datasets/generate.js';
import { generateHiggsLike, type HiggsTruth } from '../client/datasets/higgs.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cirrus-generate-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function sha(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

async function lines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  if (text === '') return [];
  assert.ok(text.endsWith('\n'), 'the file ends with a newline');
  return text.slice(0, -1).split('\n');
}

/** Entropy of a 25% click rate: what a model that knows only the CTR achieves. */
const ENTROPY_AT_CTR = -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75));

test('criteo-like: layout, determinism, CTR, power-law categories, informative planted model', async () => {
  const file = join(dir, 'criteo-a.tsv');
  const truth = await generateCriteoLike({ rows: 20_000, seed: 7, file });
  const rows = await lines(file);
  assert.equal(rows.length, 20_000);

  const counts: Array<Map<string, number>> = Array.from({ length: 26 }, () => new Map());
  let clicks = 0;
  let missingInts = 0;
  let missingCats = 0;
  let maxInt = 0;
  for (const [i, line] of rows.entries()) {
    const f = line.split('\t');
    assert.equal(f.length, 40, `line ${i + 1}: 40 tab-separated columns`);
    assert.ok(f[0] === '0' || f[0] === '1', `line ${i + 1}: label`);
    clicks += Number(f[0]);
    for (let j = 1; j <= 13; j++) {
      if (f[j] === '') missingInts++;
      else {
        assert.match(f[j]!, /^\d+$/, `line ${i + 1}, I${j}: a non-negative integer`);
        maxInt = Math.max(maxInt, Number(f[j]));
      }
    }
    for (let j = 0; j < 26; j++) {
      const v = f[14 + j]!;
      if (v === '') missingCats++;
      else {
        assert.match(v, /^[0-9a-f]{8}$/, `line ${i + 1}, C${j + 1}: 8 hex digits`);
        counts[j]!.set(v, (counts[j]!.get(v) ?? 0) + 1);
      }
    }
  }
  assert.ok(missingInts > 0 && missingCats > 0, 'some values are missing');
  assert.ok(maxInt > 1000, `integer columns are heavy-tailed (max ${maxInt})`);

  // truth.json agrees with the file and with the returned value.
  const onDisk = JSON.parse(await readFile(`${file}.truth.json`, 'utf8')) as CriteoTruth;
  assert.deepEqual(onDisk, truth);
  assert.equal(truth.rows, 20_000);
  assert.equal(truth.seed, 7);
  assert.equal(truth.ctr, clicks / 20_000);
  assert.ok(truth.ctr >= 0.2 && truth.ctr <= 0.3, `CTR ${truth.ctr}`);
  assert.ok(truth.bayesLogLoss > 0 && truth.bayesLogLoss < ENTROPY_AT_CTR, `bayesLogLoss ${truth.bayesLogLoss} < ${ENTROPY_AT_CTR}`);

  // Power law: in every column the top value is far more frequent than the median value.
  const distinct = counts.map((m) => m.size);
  for (const [j, m] of counts.entries()) {
    const freq = [...m.values()].sort((a, b) => b - a);
    const median = freq[Math.floor(freq.length / 2)]!;
    assert.ok(freq[0]! >= 4 * median, `C${j + 1}: top ${freq[0]} vs median ${median} over ${freq.length} values`);
  }
  const widest = counts[distinct.indexOf(Math.max(...distinct))]!;
  const wf = [...widest.values()].sort((a, b) => b - a);
  assert.ok(wf[0]! >= 100 * wf[Math.floor(wf.length / 2)]!, 'the widest column has a long tail');
  assert.ok(Math.max(...distinct) > 20 * Math.min(...distinct), `vocabulary sizes differ between columns: ${distinct.join(', ')}`);

  // Same seed: the same bytes. Another seed: other bytes.
  const again = join(dir, 'criteo-b.tsv');
  assert.deepEqual(await generateCriteoLike({ rows: 20_000, seed: 7, file: again }), truth);
  assert.equal(await sha(again), await sha(file));
  const other = join(dir, 'criteo-c.tsv');
  await generateCriteoLike({ rows: 20_000, seed: 8, file: other });
  assert.notEqual(await sha(other), await sha(file));
});

test('criteo-like: exact row counts (0, 1, batch boundaries) and the bits option', async () => {
  for (const rows of [0, 1, 2047, 2048, 2049, 5000]) {
    const file = join(dir, `criteo-${rows}.tsv`);
    const truth = await generateCriteoLike({ rows, seed: 3, file, bits: 6 });
    assert.equal((await lines(file)).length, rows, `${rows} rows`);
    assert.equal(truth.rows, rows);
  }
  // A prefix of a longer file is the shorter file: rows do not depend on the total.
  const short = await readFile(join(dir, 'criteo-2048.tsv'), 'utf8');
  const long = await readFile(join(dir, 'criteo-5000.tsv'), 'utf8');
  assert.ok(long.startsWith(short));
  // bits = 6 caps every vocabulary at 64 values.
  const distinct: Array<Set<string>> = Array.from({ length: 26 }, () => new Set());
  for (const line of await lines(join(dir, 'criteo-5000.tsv'))) line.split('\t').slice(14).forEach((v, j) => v && distinct[j]!.add(v));
  assert.ok(distinct.every((s) => s.size <= 64), distinct.map((s) => s.size).join(','));
  // No temp files are left next to the outputs.
  assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.tmp')), []);
});

test('higgs-like: 29 CSV columns, exact rows, ~53% positives, deterministic', async () => {
  const file = join(dir, 'higgs-a.csv');
  const truth = await generateHiggsLike({ rows: 20_000, seed: 5, file });
  const rows = await lines(file);
  assert.equal(rows.length, 20_000);
  let positives = 0;
  for (const [i, line] of rows.entries()) {
    const f = line.split(',');
    assert.equal(f.length, 29, `line ${i + 1}: label + 28 features`);
    assert.ok(f[0] === '0' || f[0] === '1');
    positives += Number(f[0]);
    for (let j = 1; j < 29; j++) assert.ok(Number.isFinite(Number(f[j])), `line ${i + 1}, column ${j + 1}: a number`);
  }
  const onDisk = JSON.parse(await readFile(`${file}.truth.json`, 'utf8')) as HiggsTruth;
  assert.deepEqual(onDisk, truth);
  assert.equal(truth.positiveRate, positives / 20_000);
  assert.ok(truth.positiveRate > 0.5 && truth.positiveRate < 0.56, `positive rate ${truth.positiveRate}`);

  // The label depends on the features: the high-level mass m_bb (column 27) separates the classes.
  const mbb = (label: string) => rows.filter((l) => l.startsWith(`${label},`)).map((l) => Math.log(Number(l.split(',')[26])));
  const spread = (xs: number[]) => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    return xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length;
  };
  assert.ok(spread(mbb('1')) < 0.8 * spread(mbb('0')), 'positives concentrate in a mass window');

  const again = join(dir, 'higgs-b.csv');
  await generateHiggsLike({ rows: 20_000, seed: 5, file: again });
  assert.equal(await sha(again), await sha(file));
  const other = join(dir, 'higgs-c.csv');
  await generateHiggsLike({ rows: 20_000, seed: 6, file: other });
  assert.notEqual(await sha(other), await sha(file));

  for (const n of [0, 1, 2049]) {
    const f = join(dir, `higgs-${n}.csv`);
    await generateHiggsLike({ rows: n, seed: 1, file: f });
    assert.equal((await lines(f)).length, n);
  }
});

test('generators reject bad arguments with a typed error', async () => {
  const file = join(dir, 'bad.tsv');
  await assert.rejects(generateCriteoLike({ rows: -1, seed: 1, file }), (e: unknown) => e instanceof GenerateError && e.code === 'GENERATE_ARGUMENT' && /rows/.test(e.message));
  await assert.rejects(generateCriteoLike({ rows: 1, seed: 1.5, file }), (e: unknown) => e instanceof GenerateError && /seed/.test(e.message));
  await assert.rejects(generateCriteoLike({ rows: 1, seed: 1, file, bits: 30 }), (e: unknown) => e instanceof GenerateError && /bits/.test(e.message));
  await assert.rejects(generateHiggsLike({ rows: 1, seed: 1, file: '' }), (e: unknown) => e instanceof GenerateError && /file/.test(e.message));
  await assert.rejects(generateHiggsLike({ rows: 10, seed: 1, file: join(dir, 'no-such-dir', 'x.csv') }), /ENOENT/);
});
