/**
 * The guard `npm test` runs over test/ (test/support/check-tests.ts): fixtures with every kind of
 * test body and skip it must accept or reject, its command line's exit code, and test/ itself.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkTestSources, testSources, type TestProblem } from './support/check-tests.js';

const HELPER = `import type { TestContext } from 'node:test';
export function skipOrFail(t: TestContext, missing: string | undefined): boolean {
  if (missing === undefined) return false;
  if (process.env.CI === 'true') throw new Error(missing);
  t.skip(missing);
  return true;
}
`;

const ASSERTING_HELPER = `import assert from 'node:assert/strict';
export function expectTwo(n: number): void {
  assert.equal(n, 2);
}
export const quiet = (n: number): number => n + 1;
`;

// Each line marked //! <message> is where the guard must report <message>.
const SUITE = `import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import { expectTwo, quiet } from './support/helpers.js';
import { skipOrFail } from './support/skip-or-fail.js';

function sumChecked(a: number, b: number): number {
  assert.ok(Number.isFinite(a + b));
  return a + b;
}

test('asserts directly', () => {
  assert.equal(1 + 1, 2);
});
test('asserts in a rejects callback', async () => {
  await assert.rejects(Promise.reject(new Error('x')), /x/);
});
test('asserts through a local helper', () => {
  sumChecked(1, 2);
});
test('asserts through an imported helper', () => {
  expectTwo(2);
});
test('asserts inside a nested callback', () => {
  [1].forEach((v) => assert.equal(v, 1));
});
test('skips the one way', (t) => {
  if (skipOrFail(t, undefined)) return;
  assert.ok(true);
});
test('runs but checks nothing', () => { //! test 'runs but checks nothing': no assertion in its body
  sumChecked;
  quiet(1);
});
test('skips by hand', (t) => {
  t.skip('no server'); //! t.skip(): skips go through skipOrFail (test/support/skip-or-fail.ts), which fails under CI
  assert.ok(true);
});
test('skips by option', { skip: 'no server' }, () => { //! test 'skips by option': a 'skip' option; skips go through skipOrFail (test/support/skip-or-fail.ts), which fails under CI
  assert.ok(true);
});
test.skip('skipped outright', () => { //! test.skip(): skips go through skipOrFail (test/support/skip-or-fail.ts), which fails under CI
  assert.ok(true);
});
describe('a suite', { todo: true }, () => { //! test 'a suite': a 'todo' option; skips go through skipOrFail (test/support/skip-or-fail.ts), which fails under CI
  it('asserts', () => {
    assert.equal(typeof it, 'function');
  });
  it('does not', () => {}); //! test 'does not': no assertion in its body
});
test('subtests are tests too', async (t) => {
  assert.ok(t);
  await t.test('a subtest without assertion', () => {}); //! test 'a subtest without assertion': no assertion in its body
});

const withValue = (title: string, body: (v: number) => void) =>
  test(title, () => {
    body(2);
  });
withValue('a wrapper body that asserts', (v) => expectTwo(v));
withValue('a wrapper body that does not', (v) => void quiet(v)); //! test 'a wrapper body that does not': the body passed to withValue has no assertion
`;

let dir: string;
let expected: TestProblem[];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cirrus-check-tests-'));
  const testDir = join(dir, 'test');
  mkdirSync(join(testDir, 'support'), { recursive: true });
  writeFileSync(join(testDir, 'support', 'skip-or-fail.ts'), HELPER);
  writeFileSync(join(testDir, 'support', 'helpers.ts'), ASSERTING_HELPER);
  writeFileSync(join(testDir, 'suite.test.ts'), SUITE);
  expected = SUITE.split('\n').flatMap((text, i) => {
    const m = /\/\/! (.*)$/.exec(text);
    return m ? [{ file: 'test/suite.test.ts', line: i + 1, message: m[1]! }] : [];
  });
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('the guard reports every test body without an assertion and every skip outside the helper, nothing else', () => {
  const testDir = join(dir, 'test');
  assert.equal(expected.length, 8);
  assert.deepEqual(testSources(testDir), [join(testDir, 'suite.test.ts'), join(testDir, 'support', 'helpers.ts'), join(testDir, 'support', 'skip-or-fail.ts')]);
  assert.deepEqual(checkTestSources(testSources(testDir), { skipHelper: join(testDir, 'support', 'skip-or-fail.ts') }), expected);
});

test('its command line exits 1 and names each problem; a clean directory exits 0', () => {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'support', 'check-tests.js');
  const bad = spawnSync(process.execPath, [script, join(dir, 'test')], { encoding: 'utf8' });
  assert.equal(bad.status, 1, bad.stderr);
  assert.deepEqual(
    bad.stderr.trim().split('\n'),
    [...expected.map((p) => `${p.file}:${p.line}: ${p.message}`), `check-tests: ${expected.length} problem(s) in ${join(dir, 'test')}`],
  );
  const clean = join(dir, 'clean');
  mkdirSync(join(clean, 'support'), { recursive: true });
  writeFileSync(join(clean, 'support', 'skip-or-fail.ts'), HELPER);
  writeFileSync(join(clean, 'ok.test.ts'), "import assert from 'node:assert/strict';\nimport { test } from 'node:test';\ntest('ok', () => assert.ok(1));\n");
  const good = spawnSync(process.execPath, [script, clean], { encoding: 'utf8' });
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, /^check-tests: every test body asserts, every skip goes through skipOrFail \(2 files\)/);
});

test("this project's test/ passes the guard", () => {
  const testDir = fileURLToPath(new URL('../../test', import.meta.url));
  assert.deepEqual(checkTestSources(testSources(testDir), { skipHelper: join(testDir, 'support', 'skip-or-fail.ts') }), []);
});
