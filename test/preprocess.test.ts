import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { DenseShard, RatingsShard, Shard, SparseShard } from '../channels/datasets/shard.js';
import {
  CRITEO_CAT_NAMES,
  FeatureHasher,
  InputError,
  hashBucket,
  loadFashionMnistDir,
  murmur3,
  murmur3Bytes,
  parseCsv,
  parseLibsvm,
  preprocessLocal,
  readLines,
  type PreprocessLocalOptions,
} from '../client/preprocess/index.js';
import { MemoryDatasetWriter } from './support/memory-dataset-writer.js';
import { skipOrFail } from './support/skip-or-fail.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cirrus-preprocess-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

type Opts = Omit<PreprocessLocalOptions, 'writer' | 'name'> & { name?: string };

/** Runs the pipeline into a memory writer; no split and no shuffle unless asked, so order is kept. */
async function run(opts: Opts, writer = new MemoryDatasetWriter(opts.name ?? 'ds')) {
  const result = await preprocessLocal({ split: 1, shuffle: false, ...opts, name: writer.name, writer });
  return { result, writer, manifest: result.manifest };
}

/** Expects the pipeline to fail with an InputError of `code` and exactly `message`, leaving nothing behind. */
async function fails(opts: Opts, code: string, message: string): Promise<void> {
  const writer = new MemoryDatasetWriter('bad');
  await assert.rejects(
    () => preprocessLocal({ split: 1, shuffle: false, ...opts, name: 'bad', writer }),
    (err: unknown) => {
      assert.ok(err instanceof InputError, `expected an InputError, got ${String(err)}`);
      assert.equal(err.message, message);
      assert.equal(err.code, code);
      return true;
    },
  );
  assert.equal(writer.aborted, true, 'the writer must be aborted');
  assert.equal(writer.manifest, undefined, 'no manifest may be written');
}

interface SRow {
  label: number;
  indices: number[];
  values: number[];
}

function sparseRows(shards: Shard[]): SRow[] {
  const out: SRow[] = [];
  for (const s of shards as SparseShard[]) {
    assert.equal(s.kind, 'sparse');
    for (let r = 0; r < s.rows; r++) {
      const a = s.indptr[r]!;
      const b = s.indptr[r + 1]!;
      out.push({ label: s.labels[r]!, indices: Array.from(s.indices.subarray(a, b)), values: Array.from(s.values.subarray(a, b)) });
    }
  }
  return out;
}

function denseRows(shards: Shard[]): Array<{ label: number; x: number[] }> {
  const out: Array<{ label: number; x: number[] }> = [];
  for (const s of shards as DenseShard[]) {
    assert.equal(s.kind, 'dense');
    for (let r = 0; r < s.rows; r++) out.push({ label: s.labels[r]!, x: Array.from(s.x.subarray(r * s.cols, (r + 1) * s.cols)) });
  }
  return out;
}

const f32 = (xs: number[]) => xs.map((v) => Math.fround(v));

// -----------------------------------------------------------------------------------------------
describe('murmur3 and feature hashing', () => {
  test('MurmurHash3_x86_32 matches the reference vectors', () => {
    // Each value was checked against Austin Appleby's MurmurHash3.c (as shipped in Debian's
    // libmurmurhash-dev examples), compiled and run on the same inputs.
    const vectors: Array<[string, number, number]> = [
      ['', 0, 0],
      ['', 1, 0x514e28b7],
      ['', 0xffffffff, 0x81f16f39],
      ['hello', 0, 0x248bfa47],
      ['Hello, world!', 1234, 0xfaf6cdb3],
      ['Hello, world!', 0x9747b28c, 0x24884cba],
      ['aaaa', 0x9747b28c, 0x5a97808a],
      ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
      ['a', 0, 0x3c2569b2],
      ['ab', 0, 0x9bbfd75f],
      ['abc', 0, 0xb3dd93fa],
      ['abcd', 0, 0x43ed676a],
      ['abcde', 0, 0xe89b9af6],
      ['héllo wörld €', 42, 0x3c03ee66], // non-ASCII: hashed over its UTF-8 bytes
    ];
    for (const [text, seed, want] of vectors) {
      assert.equal(murmur3(text, seed), want, `murmur3(${JSON.stringify(text)}, ${seed})`);
      assert.equal(murmur3Bytes(new TextEncoder().encode(text), seed), want, `murmur3Bytes(${JSON.stringify(text)}, ${seed})`);
    }
  });

  const BUCKETS: Array<[string, string, number, number, number]> = [
    // column, value, bits, seed, bucket (= reference murmur3(column + '=' + value) mod 2^bits)
    ['C1', '68fd1e64', 20, 0, 832045],
    ['C2', '80e26c9b', 20, 0, 314414],
    ['C26', 'e5ba7672', 20, 0, 1040734],
    ['age', '42', 20, 0, 193134],
    ['city', 'Zürich', 20, 0, 447895],
    ['C1', '68fd1e64', 20, 7, 454228],
    ['C1', '68fd1e64', 4, 0, 13],
  ];

  test('buckets are exact and fixed', () => {
    for (const [column, value, bits, seed, want] of BUCKETS) assert.equal(hashBucket(column, value, bits, seed), want, `${column}=${value}`);
    // The separator keeps 'a'+'bc' and 'ab'+'c' apart.
    assert.equal(hashBucket('a', 'bc', 20), 499949);
    assert.equal(hashBucket('ab', 'c', 20), 990234);
  });

  test('buckets are the same in another process', () => {
    const url = new URL('../algorithms/preprocess/hashing.js', import.meta.url).href;
    const code = `import { hashBucket } from ${JSON.stringify(url)};
      const cases = ${JSON.stringify(BUCKETS.map(([c, v, b, s]) => [c, v, b, s]))};
      console.log(JSON.stringify(cases.map(([c, v, b, s]) => hashBucket(c, v, b, s))));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), BUCKETS.map((b) => b[4]));
  });

  test('a row: counts for repeated buckets, sorted merged indices, bias at 2^bits, numeric after it', () => {
    const h = new FeatureHasher({ bits: 4, hashed: ['x', 'y', 'x2'], numeric: ['n1', 'n2', 'n3'], numericTransform: 'log1p', bias: true });
    assert.equal(h.features, 16 + 1 + 3);
    assert.equal(h.biasIndex, 16);
    const bx = hashBucket('x', 'v', 4);
    const by = hashBucket('y', 'w', 4);
    const row = h.hashRow(['v', 'w', null], [0, 3, -3]);
    const expect = new Map<number, number>();
    expect.set(bx, 1);
    expect.set(by, (expect.get(by) ?? 0) + 1);
    const sorted = [...expect.keys()].sort((a, b) => a - b);
    assert.deepEqual(row.indices, [...sorted, 16, 18, 19]);
    assert.deepEqual(row.values, [...sorted.map((k) => expect.get(k)!), 1, Math.log1p(3), -Math.log1p(3)]);
    // The same column twice with the same value hits one bucket twice: value 2.
    const twice = new FeatureHasher({ bits: 10, hashed: ['c', 'c'] }).hashRow(['v', 'v']);
    assert.deepEqual(twice, { indices: [hashBucket('c', 'v', 10)], values: [2] });
  });
});

// -----------------------------------------------------------------------------------------------
describe('line reader', () => {
  test('\\n and \\r\\n, blank lines kept, a last line without newline, BOM dropped, exact byte offsets', async () => {
    const path = await file('lines.txt', '\ufeffa\r\nb\n\nc');
    const lines = [];
    for await (const l of readLines(path)) lines.push(l);
    assert.deepEqual(lines, [
      { line: 'a', number: 1, bytesRead: 6 },
      { line: 'b', number: 2, bytesRead: 8 },
      { line: '', number: 3, bytesRead: 9 },
      { line: 'c', number: 4, bytesRead: 10 },
    ]);
  });

  test('gzip input is read transparently; a line longer than a chunk survives', async () => {
    const long = 'x'.repeat(3 << 20);
    const path = await file('lines.gz', gzipSync(`first\n${long}\nlast\n`));
    const got: string[] = [];
    for await (const l of readLines(path)) got.push(l.line);
    assert.equal(got.length, 3);
    assert.equal(got[0], 'first');
    assert.equal(got[1], long);
    assert.equal(got[2], 'last');
  });

  test('an overlong line is refused, not buffered without end', async () => {
    const path = await file('overlong.txt', `ok\n${'y'.repeat(100)}\n`);
    await assert.rejects(
      async () => {
        for await (const _ of readLines(path, { maxLineBytes: 50 })) void _;
      },
      { code: 'INPUT_FORMAT', message: `${path}:2: expected a text line of at most 50 bytes, found a longer one (is this a binary file or the wrong format?)` },
    );
  });
});

// -----------------------------------------------------------------------------------------------
describe('loaders round-trip exactly', () => {
  test('libsvm: comments, qid, \\r\\n, blank lines, -1/+1 mapped to 0/1, 1-based -> 0-based', async () => {
    const text = '# header comment\n+1 qid:3 1:0.5 3:-2 10:1e-3   # trailing\n-1 2:4\n+1 5:1.25\r\n\n-1\n+1 1:1 2:2';
    const path = await file('a.svm', text);
    const { manifest, writer } = await run({ input: path, format: 'libsvm', rowsPerShard: 2 });
    assert.deepEqual(sparseRows(writer.shards.train), [
      { label: 1, indices: [0, 2, 9], values: f32([0.5, -2, 1e-3]) },
      { label: 0, indices: [1], values: [4] },
      { label: 1, indices: [4], values: [1.25] },
      { label: 0, indices: [], values: [] },
      { label: 1, indices: [0, 1], values: [1, 2] },
    ]);
    assert.deepEqual(writer.shards.train.map((s) => s.rows), [2, 2, 1]);
    assert.equal(manifest.kind, 'sparse');
    assert.equal(manifest.task, 'binary');
    assert.equal(manifest.features, 10);
    assert.equal(manifest.classes, 2);
    assert.equal(manifest.trainRows, 5);
    assert.equal(manifest.testRows, 0);
    assert.equal(manifest.rowsPerShard, 2);
    assert.equal(manifest.stats, null);
    assert.deepEqual(manifest.source, { file: path, format: 'libsvm', bytes: Buffer.byteLength(text) });
    assert.deepEqual(
      manifest.transforms.map((t) => t['type']),
      ['libsvm-indices', 'label-map', 'split'],
    );
  });

  test('libsvm zeroBased, declared features, regression labels kept as they are', async () => {
    const path = await file('b.svm', '2.5 0:1 7:2\n-3 3:1\n');
    const { manifest, writer } = await run({ input: path, format: 'libsvm', zeroBased: true, features: 8, task: 'regression' });
    assert.deepEqual(sparseRows(writer.shards.train), [
      { label: 2.5, indices: [0, 7], values: [1, 2] },
      { label: -3, indices: [3], values: [1] },
    ]);
    assert.equal(manifest.features, 8);
    assert.equal(manifest.classes, 0);
    assert.equal(writer.shards.train[0]!.cols, 8);
  });

  test('gzip libsvm input gives the same rows', async () => {
    const text = '1 1:1 4:0.25\n0 2:3\n';
    const plain = await run({ input: await file('c.svm', text), format: 'libsvm' });
    const gz = await run({ input: await file('c.svm.gz', gzipSync(text)), format: 'libsvm' });
    assert.deepEqual(sparseRows(gz.writer.shards.train), sparseRows(plain.writer.shards.train));
    assert.equal(sparseRows(gz.writer.shards.train).length, 2);
  });

  test('csv: header detected, label by name, feature names, \\r\\n and blank lines', async () => {
    const path = await file('a.csv', 'age,income,y\n30,1.5,1\r\n41,-2,0\n\n25,1e3,1');
    const { manifest, writer } = await run({ input: path, format: 'csv', labelColumn: 'y' });
    assert.deepEqual(denseRows(writer.shards.train), [
      { label: 1, x: [30, 1.5] },
      { label: 0, x: [41, -2] },
      { label: 1, x: [25, 1000] },
    ]);
    assert.equal(manifest.kind, 'dense');
    assert.equal(manifest.task, 'binary'); // inferred: every label is 0 or 1
    assert.equal(manifest.features, 2);
    assert.deepEqual(manifest.featureNames, ['age', 'income']);
  });

  test('csv: no header, label by index, other delimiter, quoted cells, regression inferred', async () => {
    const path = await file('b.csv', '1.5;2;3\n"0.25";5;6\n');
    const { manifest, writer } = await run({ input: path, format: 'csv', delimiter: ';', labelColumn: 0 });
    assert.deepEqual(denseRows(writer.shards.train), [
      { label: 1.5, x: [2, 3] },
      { label: 0.25, x: [5, 6] },
    ]);
    assert.equal(manifest.task, 'regression');
    assert.equal(manifest.featureNames, undefined);
  });

  test('csv parser exposes its feature names', async () => {
    const path = await file('c.csv', 'a,"b,c",label\n1,2,0\n');
    const rows = [];
    for await (const r of parseCsv(path)) rows.push(r);
    assert.deepEqual(rows, [{ label: 0, x: [1, 2], line: 2 }]);
  });

  test('csv with hashed columns becomes sparse', async () => {
    const path = await file('d.csv', 'city,age,y\nZürich,42,1\nBern,0,0\n');
    const { manifest, writer } = await run({ input: path, format: 'csv', hash: { columns: ['city'], bits: 20, bias: true }, task: 'binary' });
    assert.equal(manifest.kind, 'sparse');
    assert.equal(manifest.features, (1 << 20) + 2);
    assert.deepEqual(sparseRows(writer.shards.train), [
      { label: 1, indices: [447895, 1 << 20, (1 << 20) + 1], values: [1, 1, 42] },
      { label: 0, indices: [hashBucket('city', 'Bern', 20), 1 << 20], values: [1, 1] },
    ]);
    // The input's layout comes first (a model's pipeline reads it), then the hashing.
    assert.deepEqual(manifest.transforms.slice(0, 2).map((t) => t['type']), ['input', 'hash']);
  });

  test('ratings: header, ids and ranges', async () => {
    const path = await file('r.csv', 'user,item,rating\n0,5,4.5\n3,1,2\n');
    const { manifest, writer } = await run({ input: path, format: 'ratings' });
    const s = writer.shards.train[0] as RatingsShard;
    assert.equal(s.kind, 'ratings');
    assert.deepEqual([Array.from(s.users), Array.from(s.items), Array.from(s.ratings)], [[0, 3], [5, 1], [4.5, 2]]);
    assert.equal(manifest.kind, 'ratings');
    assert.equal(manifest.task, 'regression');
    assert.equal(manifest.users, 4);
    assert.equal(manifest.items, 6);
    assert.equal(manifest.rowsPerShard, 200_000);
  });

  test('criteo: ints log1p at their own indices, categoricals hashed with counts, missing cells skipped', async () => {
    const ints = (vals: string[]) => [...vals, ...Array(13 - vals.length).fill('')];
    const cats = (vals: string[]) => [...vals, ...Array(26 - vals.length).fill('')];
    const lines = [
      ['1', ...ints(['3', '', '-2', '0']), ...cats(['68fd1e64', '80e26c9b', '', 'abc'])],
      ['0', ...ints([]), ...cats([])],
      ['1', ...ints(['7']), ...cats(['68fd1e64', '68fd1e64'])],
    ];
    const path = await file('criteo.tsv', lines.map((l) => l.join('\t')).join('\n') + '\n');
    const bits = 4;
    const { manifest, writer } = await run({ input: path, format: 'criteo', hash: { columns: [...CRITEO_CAT_NAMES], bits } });
    const expected = lines.map((l) => {
      const counts = new Map<number, number>();
      l.slice(14).forEach((v, k) => {
        if (v !== '') {
          const b = murmur3(`C${k + 1}=${v}`) & ((1 << bits) - 1);
          counts.set(b, (counts.get(b) ?? 0) + 1);
        }
      });
      const idx = [...counts.keys()].sort((a, b) => a - b);
      const vals = idx.map((b) => counts.get(b)!);
      l.slice(1, 14).forEach((v, j) => {
        const n = Number(v);
        if (v !== '' && n !== 0) {
          idx.push((1 << bits) + j);
          vals.push(n > 0 ? Math.log1p(n) : -Math.log1p(-n));
        }
      });
      return { label: Number(l[0]), indices: idx, values: f32(vals) };
    });
    assert.deepEqual(sparseRows(writer.shards.train), expected);
    assert.equal(manifest.features, 16 + 13);
    assert.equal(manifest.task, 'binary');
  });

  test('criteo: a subset of the categorical columns, with bias', async () => {
    const cells = ['0', '5', ...Array(12).fill(''), 'aa', 'bb', ...Array(24).fill('cc')];
    const path = await file('criteo-sub.tsv', cells.join('\t') + '\n');
    const { manifest, writer } = await run({ input: path, format: 'criteo', hash: { columns: ['C2'], bits: 10, bias: true } });
    assert.deepEqual(sparseRows(writer.shards.train), [{ label: 0, indices: [hashBucket('C2', 'bb', 10), 1024, 1025], values: f32([1, 1, Math.log1p(5)]) }]);
    assert.equal(manifest.features, 1024 + 1 + 13);
  });

  test('idx: images scaled by 1/255 with their labels, plain and gzipped', async () => {
    const header = (magic: number, dims: number[]) => {
      const b = Buffer.alloc(4 + 4 * dims.length);
      b.writeUInt32BE(magic, 0);
      dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
      return b;
    };
    const pixels = Array.from({ length: 18 }, (_, i) => (i * 37) % 256);
    const images = Buffer.concat([header(0x803, [3, 2, 3]), Buffer.from(pixels)]);
    const labels = Buffer.concat([header(0x801, [3]), Buffer.from([7, 0, 9])]);
    const want = [7, 0, 9].map((label, r) => ({ label, x: f32(pixels.slice(r * 6, r * 6 + 6).map((p) => p / 255)) }));
    await file('p-labels-idx1-ubyte', labels);
    const plain = await run({ input: await file('p-images-idx3-ubyte', images), format: 'idx' });
    assert.deepEqual(denseRows(plain.writer.shards.train), want);
    assert.equal(plain.manifest.features, 6);
    assert.equal(plain.manifest.classes, 10);
    await file('g-labels-idx1-ubyte.gz', gzipSync(labels));
    const gz = await run({ input: await file('g-images-idx3-ubyte.gz', gzipSync(images)), format: 'idx', classes: 10 });
    assert.deepEqual(denseRows(gz.writer.shards.train), want);
  });
});

// -----------------------------------------------------------------------------------------------
describe('bad input gives exact errors and leaves nothing behind', () => {
  test('malformed libsvm lines', async () => {
    const p = await file('bad1.svm', '1 1:1\n0 2:2\n1 1:2 abc\n');
    await fails({ input: p, format: 'libsvm' }, 'INPUT_PARSE', `${p}:3: token 3: expected index:value, found 'abc'`);
    const q = await file('bad2.svm', '1 3:1 2:1\n');
    await fails({ input: q, format: 'libsvm' }, 'INPUT_PARSE', `${q}:1: token 3: expected a feature index greater than 3 (indices must increase within a line), found 2`);
    const r = await file('bad3.svm', 'x 1:1\n');
    await fails({ input: r, format: 'libsvm' }, 'INPUT_PARSE', `${r}:1: label: expected a numeric label, found 'x'`);
    const s = await file('bad4.svm', '1 0:1\n');
    await fails(
      { input: s, format: 'libsvm' },
      'INPUT_PARSE',
      `${s}:1: token 2: expected a feature index >= 1 (svmlight indices are 1-based; pass zeroBased for 0-based files), found '0:1'`,
    );
    const t = await file('bad5.svm', '1 2:z\n');
    await fails({ input: t, format: 'libsvm' }, 'INPUT_PARSE', `${t}:1: token 2: expected a numeric value after ':', found '2:z'`);
    // A fault early in a large gzip file stops the read there (no hang, streams closed).
    const many = ['1 1:1', '1 1:2 2:1:5', ...Array.from({ length: 200_000 }, (_, i) => `0 ${i + 1}:1`)].join('\n');
    const u = await file('bad6.svm.gz', gzipSync(many));
    await fails({ input: u, format: 'libsvm' }, 'INPUT_PARSE', `${u}:2: token 3: expected a numeric value after ':', found '2:1:5'`);
  });

  test('non-numeric CSV cell and wrong column count', async () => {
    const p = await file('bad1.csv', 'age,income,y\n1,2,0\n3,abc,1\n');
    await fails({ input: p, format: 'csv' }, 'INPUT_PARSE', `${p}:3: column 2 ('income'): expected a number, found 'abc'`);
    const q = await file('bad2.csv', 'age,income,y\n1,2,0\n3,4,1\n5,6\n');
    await fails({ input: q, format: 'csv' }, 'INPUT_COLUMNS', `${q}:4: expected 3 columns (as in the header on line 1), found 2`);
    const r = await file('bad3.csv', '1,2,0\n3,4\n');
    await fails({ input: r, format: 'csv' }, 'INPUT_COLUMNS', `${r}:2: expected 3 columns (as on line 1), found 2`);
    const s = await file('bad4.csv', '1,2,0\n');
    await fails(
      { input: s, format: 'csv', labelColumn: 'y' },
      'INPUT_COLUMNS',
      `${s}:1: expected a header row to find the label column 'y' by name, found a row of numbers (pass header: true if it is a header)`,
    );
  });

  test('label out of range', async () => {
    const p = await file('label.svm', '1 1:1\n2 1:1\n');
    await fails({ input: p, format: 'libsvm' }, 'INPUT_LABEL', `${p}:2: label: expected -1/+1 or 0/1 for a binary task, found 2`);
    const mixed = await file('mixed.svm', '-1 1:1\n0 1:1\n');
    await fails({ input: mixed, format: 'libsvm' }, 'INPUT_LABEL', `${mixed}:2: label: expected -1 or +1 like the rows before (binary labels are either 0/1 or -1/+1), found 0`);
    const q = await file('label.csv', 'a,y\n1,0\n2,3\n');
    await fails({ input: q, format: 'csv', task: 'multiclass', classes: 3 }, 'INPUT_LABEL', `${q}:3: column 2 ('y'): expected an integer class in [0, 3) for a multiclass task, found 3`);
    const r = await file('label2.csv', 'a,y\n1,0\n2,-1\n');
    await fails({ input: r, format: 'csv', task: 'binary' }, 'INPUT_LABEL', `${r}:3: column 2 ('y'): expected 0 or 1 for a binary task, found -1`);
  });

  test('criteo column count, integer columns and labels', async () => {
    const row = (label: string, i4: string) => [label, '1', '2', '3', i4, ...Array(9).fill(''), ...Array(26).fill('a1')].join('\t');
    const p = await file('bad1.tsv', `${row('0', '4')}\n${row('1', '3.5')}\n`);
    await fails({ input: p, format: 'criteo' }, 'INPUT_PARSE', `${p}:2: column 5 ('I4'): expected an integer or an empty cell, found '3.5'`);
    const q = await file('bad2.tsv', `${row('0', '4')}\n1\t2\t3\n`);
    await fails({ input: q, format: 'criteo' }, 'INPUT_COLUMNS', `${q}:2: expected 40 tab-separated columns (label, I1..I13, C1..C26), found 3`);
    const r = await file('bad3.tsv', `${row('2', '4')}\n`);
    await fails({ input: r, format: 'criteo' }, 'INPUT_LABEL', `${r}:1: column 1 ('label'): expected a click label 0 or 1, found '2'`);
  });

  test('ratings ids', async () => {
    const p = await file('bad.ratings', '0,1,5\n-1,2,3\n');
    await fails({ input: p, format: 'ratings' }, 'INPUT_PARSE', `${p}:2: column 1 ('user'): expected a non-negative integer user id below 4294967295, found '-1'`);
  });

  test('IDX wrong magic, wrong size (plain and gzip), count mismatch, label range', async () => {
    const hdr = (magic: number, dims: number[]) => {
      const b = Buffer.alloc(4 + 4 * dims.length);
      b.writeUInt32BE(magic, 0);
      dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
      return b;
    };
    const labels = Buffer.concat([hdr(0x801, [2]), Buffer.from([1, 2])]);
    const images = Buffer.concat([hdr(0x803, [2, 2, 2]), Buffer.alloc(8, 255)]);
    const lab = await file('m-labels-idx1-ubyte', labels);

    const wrongMagic = await file('w-images-idx3-ubyte', labels);
    await file('w-labels-idx1-ubyte', labels);
    await fails({ input: wrongMagic, format: 'idx' }, 'INPUT_FORMAT', `${wrongMagic}: expected IDX image magic 0x00000803 (unsigned bytes, 3 dimensions), found 0x00000801`);

    const short = await file('s-images-idx3-ubyte', images.subarray(0, images.length - 1));
    await fails({ input: short, format: 'idx', labels: lab }, 'INPUT_FORMAT', `${short}: expected 24 bytes (16-byte header + 2 x 2 x 2 bytes of data), found 23`);
    const long = await file('l-images-idx3-ubyte', Buffer.concat([images, Buffer.from([0])]));
    await fails({ input: long, format: 'idx', labels: lab }, 'INPUT_FORMAT', `${long}: expected 24 bytes (16-byte header + 2 x 2 x 2 bytes of data), found 25`);
    const shortGz = await file('sg-images-idx3-ubyte.gz', gzipSync(images.subarray(0, images.length - 1)));
    await fails({ input: shortGz, format: 'idx', labels: lab }, 'INPUT_FORMAT', `${shortGz}: expected 24 decompressed bytes (16-byte header + 2 x 2 x 2 bytes of data), found 23`);
    const longGz = await file('lg-images-idx3-ubyte.gz', gzipSync(Buffer.concat([images, Buffer.from([0, 0])])));
    await fails({ input: longGz, format: 'idx', labels: lab }, 'INPUT_FORMAT', `${longGz}: expected 24 decompressed bytes (16-byte header + 2 x 2 x 2 bytes of data), found 26`);

    const three = await file('t-images-idx3-ubyte', Buffer.concat([hdr(0x803, [3, 2, 2]), Buffer.alloc(12)]));
    await fails({ input: three, format: 'idx', labels: lab }, 'INPUT_FORMAT', `${three}: expected as many images as ${lab} has labels (2), found 3`);

    const ok = await file('m-images-idx3-ubyte', images);
    await fails({ input: ok, format: 'idx', classes: 2 }, 'INPUT_LABEL', `${lab}: item 2, label: expected an integer class in [0, 2) for a multiclass task, found 2`);

    const notGzip = await file('n-images-idx3-ubyte.gz', Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(30, 7)]));
    const e = await preprocessLocal({ input: notGzip, format: 'idx', labels: lab, name: 'x', writer: new MemoryDatasetWriter('x') }).catch((err: unknown) => err);
    assert.ok(e instanceof InputError);
    assert.equal(e.code, 'INPUT_FORMAT');
    assert.ok(e.message.startsWith(`${notGzip}: expected valid gzip data, found corrupt or truncated gzip (`), e.message);
  });

  test('empty input, missing file, missing Fashion-MNIST file', async () => {
    const p = await file('empty.svm', '');
    await fails({ input: p, format: 'libsvm' }, 'INPUT_EMPTY', `${p}: expected at least one data row, found none`);
    const c = await file('comments.svm', '# nothing\n\n');
    await fails({ input: c, format: 'libsvm' }, 'INPUT_EMPTY', `${c}: expected at least one data row, found none`);
    const h = await file('header.csv', 'a,b,y\n');
    await fails({ input: h, format: 'csv' }, 'INPUT_EMPTY', `${h}: expected at least one data row, found none (a header alone, or blank lines, carry no data)`);
    const missing = join(dir, 'nope.svm');
    await fails({ input: missing, format: 'libsvm' }, 'INPUT_MISSING', `${missing}: no such file`);
    const fm = join(dir, 'fm');
    await rm(fm, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(fm));
    for (const n of ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte']) await writeFile(join(fm, n), '');
    await assert.rejects(() => loadFashionMnistDir(fm), {
      code: 'INPUT_MISSING',
      message:
        `${fm}: missing t10k-labels-idx1-ubyte(.gz) (expected the four files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each plain or .gz; ` +
        `found t10k-images-idx3-ubyte, train-images-idx3-ubyte.gz, train-labels-idx1-ubyte)`,
    });
  });
});

// -----------------------------------------------------------------------------------------------
describe('sharding', () => {
  async function splitRun(seed: number) {
    const lines = Array.from({ length: 120 }, (_, i) => `${i % 2} ${i + 1}:${i}`);
    const path = await file(`split-${seed}.svm`, lines.join('\n'));
    return run({ input: path, format: 'libsvm', split: 0.5, seed, rowsPerShard: 30, shuffle: { window: 40 } });
  }

  test('a seeded split with shuffling is deterministic, loses no row and splits every row once', async () => {
    const a = await splitRun(42);
    const b = await splitRun(42);
    const c = await splitRun(43);
    const rows = (w: MemoryDatasetWriter) => ({ train: sparseRows(w.shards.train), test: sparseRows(w.shards.test) });
    assert.deepEqual(rows(a.writer), rows(b.writer));
    assert.notDeepEqual(rows(a.writer), rows(c.writer));
    const ra = rows(a.writer);
    assert.ok(a.writer.shards.train.length >= 2 && a.writer.shards.test.length >= 2);
    assert.equal(a.manifest.trainRows + a.manifest.testRows, 120);
    assert.equal(a.manifest.trainRows, ra.train.length);
    const seen = [...ra.train, ...ra.test].map((r) => r.indices[0]!).sort((x, y) => x - y);
    assert.deepEqual(seen, Array.from({ length: 120 }, (_, i) => i));
    for (const r of [...ra.train, ...ra.test]) assert.equal(r.label, r.indices[0]! % 2);
    // The shuffle moved rows: the train split is not in input order.
    const order = ra.train.map((r) => r.indices[0]!);
    assert.notDeepEqual(order, [...order].sort((x, y) => x - y));
    assert.deepEqual(
      a.manifest.transforms.map((t) => t['type']),
      ['libsvm-indices', 'split', 'shuffle'],
    );
  });

  test('uploads are awaited one at a time (back-pressure) and progress reaches the total', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => `1 ${i + 1}:1`);
    const path = await file('bp.svm', lines.join('\n') + '\n');
    const writer = new MemoryDatasetWriter('bp', { delayMs: 5 });
    const progress: Array<[number, number]> = [];
    await run({ input: path, format: 'libsvm', rowsPerShard: 10, onProgress: (r, t) => progress.push([r, t]) }, writer);
    assert.equal(writer.shards.train.length, 5);
    assert.equal(writer.maxInFlight, 1);
    const size = (await import('node:fs/promises').then((fs) => fs.stat(path))).size;
    assert.deepEqual(progress[progress.length - 1], [size, size]);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]![0] >= progress[i - 1]![0]);
  });

  test('parsers also stream row by row', async () => {
    const path = await file('rows.svm', '1 1:1\n0 3:2\n');
    const rows = [];
    for await (const r of parseLibsvm(path)) rows.push(r);
    assert.deepEqual(rows, [
      { label: 1, indices: [0], values: [1], line: 1 },
      { label: 0, indices: [2], values: [2], line: 2 },
    ]);
  });
});

// -----------------------------------------------------------------------------------------------
describe('Fashion-MNIST (dataset-fashion-mnist package)', () => {
  const FM_DIR = '/usr/share/datasets/fashion-mnist';

  test('loads 60,000 train and 10,000 test rows, 6,000 and 1,000 per class', async (t) => {
    if (skipOrFail(t, existsSync(FM_DIR) ? undefined : `${FM_DIR} is missing (apt-get install dataset-fashion-mnist)`)) return;
    const counts = { train: new Array<number>(10).fill(0), test: new Array<number>(10).fill(0) };
    const firstLabels = { train: [] as number[], test: [] as number[] };
    let firstPixelSum = -1;
    const writer = new MemoryDatasetWriter('fashion-mnist', {
      keepShards: false,
      onShard: (split, shard) => {
        const s = shard as DenseShard;
        for (const l of s.labels) counts[split][l]!++;
        if (firstLabels[split].length === 0) {
          firstLabels[split] = Array.from(s.labels.subarray(0, 10));
          if (split === 'train') firstPixelSum = Array.from(s.x.subarray(0, 784)).reduce((acc, v) => acc + Math.round(v * 255), 0);
        }
      },
    });
    const { manifest } = await run({ input: FM_DIR, format: 'fashion-mnist', name: 'fashion-mnist' }, writer);
    assert.equal(manifest.trainRows, 60_000);
    assert.equal(manifest.testRows, 10_000);
    assert.equal(manifest.features, 784);
    assert.equal(manifest.classes, 10);
    assert.equal(manifest.task, 'multiclass');
    assert.equal(manifest.labelNames?.[9], 'Ankle boot');
    assert.deepEqual(counts.train, new Array(10).fill(6_000));
    assert.deepEqual(counts.test, new Array(10).fill(1_000));
    // Unshuffled, the files' own order: the published first labels and the first image's pixel sum.
    assert.deepEqual(firstLabels.train, [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert.deepEqual(firstLabels.test, [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    assert.equal(firstPixelSum, 76_247);
  });
});
