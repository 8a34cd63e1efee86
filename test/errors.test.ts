/**
 * The one error family (issue 14): every error class a room exports is a CirrusError with a code
 * and its own class name, class names are unique, and README.md's "Error codes" table lists exactly
 * the codes the sources declare (the class code types: `CirrusError<...>` type arguments, the
 * `...Code` unions they name, and a subclass's `declare readonly code: ...`).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import * as algorithms from '../algorithms/index.js';
import * as bench from '../bench/index.js';
import * as channels from '../channels/index.js';
import * as client from '../client/index.js';
import * as hpo from '../hpo/index.js';
import * as paramserver from '../paramserver/index.js';
import * as worker from '../worker/index.js';

const { CirrusError } = paramserver;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ROOMS = { paramserver, channels, algorithms, worker, client, hpo, bench } as const;
type ErrorClass = new (...args: never[]) => Error;

/** One instance of every error class, built with representative arguments. */
const SAMPLES: Record<string, () => Error> = {
  CirrusError: () => new CirrusError('SOME_CODE', 'm'),
  PsError: () => new paramserver.PsError('PS_TIMEOUT', 'm'),
  FrameTooLargeError: () => new paramserver.FrameTooLargeError(1, 10, 5),
  PsModelError: () => new paramserver.PsModelError('PS_RANGE', 'm'),
  ChannelError: () => new channels.ChannelError('CHANNEL_CLOSED', 'm'),
  WaitTimeoutError: () => new channels.WaitTimeoutError(['k'], 5, 'memory'),
  FrameError: () => new channels.FrameError('FRAME_MAGIC', 'm'),
  CollectiveTimeoutError: () => new channels.CollectiveTimeoutError('allReduce', 0, 0, [1], 5),
  CollectiveError: () => new channels.CollectiveError('COLLECTIVE_ARGUMENT', 'm'),
  ObjectStoreError: () => new channels.ObjectStoreError('OBJECT_STORE_KEY', 'm'),
  DatasetError: () => new channels.DatasetError('DATASET_NAME', 'm'),
  ShardFormatError: () => new channels.ShardFormatError('m'),
  StatsError: () => new algorithms.StatsError('STATS_FORMAT', 'm'),
  TransformError: () => new algorithms.TransformError('TRANSFORM_ARGUMENT', 'm'),
  ModelError: () => new algorithms.ModelError('MODEL_SPEC', 'm'),
  OptimizerError: () => new algorithms.OptimizerError('OPTIMIZER_SPEC', 'm'),
  MetricsError: () => new algorithms.MetricsError('METRICS_LENGTH', 'm'),
  TrainingError: () => new algorithms.TrainingError('TRAIN_ARGUMENT', 'm'),
  SupportError: () => new algorithms.SupportError('m'),
  InputError: () => new algorithms.InputError('INPUT_PARSE', 'data.csv', 'm', { line: 3 }),
  PreprocessOptionsError: () => new algorithms.PreprocessOptionsError('m'),
  EventError: () => new worker.EventError('event.rank', 'm'),
  WorkerTrainError: () => new worker.WorkerTrainError('TRAIN_FAILED', 0, 'm'),
  WorkerTaskError: () => new worker.WorkerTaskError('SHARD_MISSING', 'm'),
  ChunkParseError: () => new worker.ChunkParseError('CHUNK_MISSING', 0, undefined, 'm'),
  TrainError: () => new client.TrainError('TRAIN_PARAMS', 'm'),
  PricesError: () => new client.PricesError('m'),
  ModelIoError: () => new client.ModelIoError('MODEL_FORMAT', 'm'),
  DeployError: () => new client.DeployError('DEPLOY_OPTIONS', 'm'),
  LauncherError: () => new client.LauncherError('LAUNCHER_CLOSED', 'm'),
  LambdaInvokeError: () => new client.LambdaInvokeError('LAMBDA_THROTTLED', 'm', { functionName: 'f', region: 'us-east-1', attempts: 1 }),
  LambdaPayloadError: () => new client.LambdaPayloadError('LAMBDA_PAYLOAD_INVALID', 'm'),
  PreprocessError: () => new client.PreprocessError('PREPROCESS_CONFIG', 'm'),
  WorkerFailedError: () => new client.WorkerFailedError('stats', 1, { status: 'timeout', durationMs: 1, coldStartMs: 0 }),
  GenerateError: () => new client.GenerateError('m'),
  ModelQueryError: () => new client.ModelQueryError('m'),
  TfjsExportError: () => new client.TfjsExportError('TFJS_EXPORT_UNSUPPORTED', 'm'),
  SearchError: () => new hpo.SearchError('SEARCH_CONFIG', 'm'),
  ReportError: () => new hpo.ReportError('REPORT_NOT_FOUND', 'm'),
};

/** Every error class the rooms' doors export, by export name (the same class may pass several doors). */
function exportedErrorClasses(): Map<string, { cls: ErrorClass; rooms: string[] }> {
  const out = new Map<string, { cls: ErrorClass; rooms: string[] }>();
  for (const [room, door] of Object.entries(ROOMS)) {
    for (const [name, value] of Object.entries(door)) {
      if (typeof value !== 'function' || !(value.prototype instanceof Error)) continue;
      const seen = out.get(name);
      if (seen) {
        assert.equal(seen.cls, value, `${room} exports a ${name} that is not the ${name} of ${seen.rooms.join(', ')}: class names must be unique`);
        seen.rooms.push(room);
      } else out.set(name, { cls: value as ErrorClass, rooms: [room] });
    }
  }
  return out;
}

test('every error class a room exports is a CirrusError with a code and its own class name', () => {
  const classes = exportedErrorClasses();
  assert.ok(classes.size >= 39, `expected the 38 error classes and CirrusError, found ${classes.size}`);
  for (const [name, { cls, rooms }] of classes) {
    const sample = SAMPLES[name];
    assert.ok(sample, `${name} (exported by ${rooms.join(', ')}) has no sample in test/errors.test.ts: add one`);
    const err = sample();
    assert.ok(err instanceof cls, `${name}: the sample is not a ${name}`);
    assert.ok(err instanceof CirrusError, `${name} does not extend CirrusError`);
    assert.equal(err.name, name, `${name}: name`);
    assert.match(err.code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/, `${name}: code`);
    assert.ok(err.message.length > 0, `${name}: message`);
  }
});

test('codes, messages and rooms of the classes with their own constructors', () => {
  const timeout = new channels.CollectiveTimeoutError('allReduce', 3, 0, [1, 2], 1500.4);
  assert.ok(timeout instanceof channels.ChannelError);
  assert.deepEqual([timeout.code, timeout.message, timeout.missingRanks, timeout.round], ['COLLECTIVE_TIMEOUT', 'allReduce round 3: rank 0 waited 1500 ms; ranks 1, 2 never arrived', [1, 2], 3]);
  const wait = new channels.WaitTimeoutError(['a', 'b'], 20, 'memory://x');
  assert.deepEqual([wait.name, wait.code, wait.message], ['WaitTimeoutError', 'CHANNEL_TIMEOUT', 'memory://x: waited 20 ms and these keys never appeared: a, b']);
  const frame = new paramserver.FrameTooLargeError(7, 100, 64);
  assert.ok(frame instanceof paramserver.PsError);
  assert.deepEqual([frame.code, frame.detail, frame.requestId], ['PS_TOO_LARGE', 'frame of 100 bytes exceeds the limit of 64 bytes', 7]);
  const rank = new worker.WorkerTrainError('TRAIN_DATASET', 2, 'no rows', { causeCode: 'DATASET_SHARD', missingRanks: [1] });
  assert.deepEqual([rank.message, rank.rank, rank.causeCode, rank.missingRanks], ['rank 2: no rows', 2, 'DATASET_SHARD', [1]]);
  const event = new worker.EventError('event.rank', 'expected a number');
  assert.deepEqual([event.code, event.field, event.message], ['EVENT_INVALID', 'event.rank', 'event.rank: expected a number']);
  const input = new algorithms.InputError('INPUT_PARSE', 'data.csv', "expected a number, found 'x'", { line: 17, column: 3 });
  assert.deepEqual([input.message, input.file, input.line, input.column], ["data.csv:17: column 3: expected a number, found 'x'", 'data.csv', 17, 3]);
  const failed = new client.WorkerFailedError('transform', 1, { status: 'error', error: { code: 'SHARD_FORMAT', message: 'bad' }, durationMs: 1, coldStartMs: 0 });
  assert.ok(failed instanceof client.PreprocessError);
  assert.deepEqual([failed.code, failed.message], ['PREPROCESS_WORKER_FAILED', 'transform worker rank 1 failed (error): SHARD_FORMAT: bad']);
});

test('a cause is passed on as Error.cause, and only when there is one', () => {
  const root = new Error('ECONNREFUSED');
  const err = new channels.ChannelError('CHANNEL_UNREACHABLE', 'm', { cause: root });
  assert.equal(err.cause, root);
  assert.equal('cause' in new channels.ChannelError('CHANNEL_UNREACHABLE', 'm'), false);
  assert.equal('cause' in new channels.ChannelError('CHANNEL_UNREACHABLE', 'm', { cause: undefined }), false);
  assert.equal(new client.LambdaInvokeError('LAMBDA_NETWORK', 'm', { functionName: 'f', region: 'r', attempts: 1, cause: root }).cause, root);
});

test("the worker's handler reports a coded error as Cirrus.<CODE> (Lambda's errorType)", async () => {
  await assert.rejects(worker.handler({ jobId: 'j' }), (err: unknown) => {
    assert.ok(err instanceof worker.EventError);
    assert.ok(err instanceof CirrusError);
    assert.equal(err.code, 'EVENT_INVALID');
    assert.equal(err.name, 'Cirrus.EVENT_INVALID');
    return true;
  });
});

// ------------------------------------------------------------------------------------------------
// The codes the sources declare, against README.md's table.

interface SourceClass {
  room: string;
  parent: string;
  /** Codes of its own type argument or `declare readonly code`; undefined: the parent's. */
  codes: string[] | undefined;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The text of a type from `first` (the rest of its first line) to its ';', comments left out. */
function typeText(lines: string[], at: number, first: string): string {
  let text = '';
  for (let i = at, line = first; i < lines.length; line = lines[++i] ?? '') {
    text += ' ' + line.replace(/\/\*.*?\*\//g, '').replace(/\/\/.*$/, '');
    if (text.includes(';')) return text.slice(0, text.indexOf(';'));
  }
  return text;
}

/** Every error class declared in the rooms' sources, and the code unions they use. */
function scanSources(): { classes: Map<string, SourceClass>; names: string[] } {
  const aliases = new Map<string, string>();
  const raw: { name: string; room: string; parent: string; codeType: string | undefined }[] = [];
  const names: string[] = [];
  for (const room of Object.keys(ROOMS)) {
    for (const file of sourceFiles(join(ROOT, room))) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        const alias = /^export type (\w+Code) =(.*)$/.exec(line);
        if (alias) aliases.set(alias[1]!, typeText(lines, i, alias[2]!));
        const named = /^(?:export )?class (\w+Error)\b/.exec(line);
        if (!named) return;
        names.push(named[1]!);
        if (named[1] === 'CirrusError') return; // the root: its code is any string
        const cls = /^export class (\w+Error) extends (\w+)(?:<(.+)>)? \{/.exec(line);
        assert.ok(cls, `${relative(ROOT, file)}:${i + 1}: an error class must be exported and extend CirrusError or another error class: ${line}`);
        let codeType = cls[3];
        for (let j = i + 1; codeType === undefined && j < lines.length && !lines[j]!.startsWith('}'); j++) {
          const declared = /^ {2}declare readonly code: (.+);$/.exec(lines[j]!);
          if (declared) codeType = declared[1];
        }
        raw.push({ name: cls[1]!, room: relative(ROOT, file).split(sep)[0]!, parent: cls[2]!, codeType });
      });
    }
  }
  const resolve = (type: string, seen: string[] = []): string[] => {
    const codes = [...type.matchAll(/'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]!);
    for (const [, ref] of type.matchAll(/\b(\w+Code)\b/g)) {
      const body = aliases.get(ref!);
      assert.ok(body !== undefined && !seen.includes(ref!), `code type ${ref} is not an 'export type ${ref} = ...' of the rooms`);
      codes.push(...resolve(body, [...seen, ref!]));
    }
    return codes;
  };
  const classes = new Map<string, SourceClass>();
  for (const c of raw) classes.set(c.name, { room: c.room, parent: c.parent, codes: c.codeType === undefined ? undefined : resolve(c.codeType) });
  return { classes, names };
}

/** code -> 'Class, Class | room, room', from the sources. */
function codesFromSources(): Map<string, string> {
  const { classes } = scanSources();
  const codesOf = (name: string): string[] => {
    const c = classes.get(name)!;
    if (c.codes) return c.codes;
    assert.ok(classes.has(c.parent), `${name} extends ${c.parent} without a code type of its own`);
    return codesOf(c.parent);
  };
  const byCode = new Map<string, { classes: Set<string>; rooms: Set<string> }>();
  for (const [name, c] of classes) {
    for (const code of codesOf(name)) {
      const row = byCode.get(code) ?? { classes: new Set(), rooms: new Set() };
      row.classes.add(name);
      row.rooms.add(c.room);
      byCode.set(code, row);
    }
  }
  return new Map([...byCode].map(([code, r]) => [code, `${[...r.classes].sort().join(', ')} | ${[...r.rooms].sort().join(', ')}`]));
}

/** code -> 'Class, Class | room, room', from README.md's "Error codes" table. */
function codesFromReadme(): Map<string, string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Error codes\n');
  assert.ok(start >= 0, 'README.md has no "## Error codes" section');
  const section = readme.slice(start + 1).split(/\n## /)[0]!;
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const row = /^\| `([A-Z][A-Z0-9_]*)` \| ([^|]+) \| ([^|]+) \|/.exec(line);
    if (!row) continue;
    assert.ok(!rows.has(row[1]!), `README.md lists ${row[1]} twice`);
    const list = (cell: string) => cell.split(',').map((s) => s.trim()).sort().join(', ');
    rows.set(row[1]!, `${list(row[2]!)} | ${list(row[3]!)}`);
  }
  return rows;
}

test('error class names are unique across the rooms', () => {
  const { names } = scanSources();
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  assert.deepEqual(twice, []);
  assert.ok(names.length >= 38, `found ${names.length} error classes`);
});

test("README.md's table lists every error code of the sources, with its classes and rooms, and no other", () => {
  const source = codesFromSources();
  const readme = codesFromReadme();
  const missing = [...source].filter(([code]) => !readme.has(code)).map(([code, cells]) => `| \`${code}\` | ${cells} | ... |`);
  assert.deepEqual(missing, [], `README.md "Error codes" lacks these rows:\n${missing.join('\n')}`);
  const stale = [...readme.keys()].filter((code) => !source.has(code));
  assert.deepEqual(stale, [], 'README.md lists codes no error class has');
  for (const [code, cells] of source) assert.equal(readme.get(code), cells, `README.md row of ${code}: classes | rooms`);
});
