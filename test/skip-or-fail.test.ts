/** The one skip rule: a missing requirement fails under CI (CI=true or CI=1) and skips elsewhere. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MissingRequirementError, inCi, skipOrFail } from './support/skip-or-fail.js';

function recorder(): { skip(message?: string): void; skipped: Array<string | undefined> } {
  const skipped: Array<string | undefined> = [];
  return { skipped, skip: (message?: string) => void skipped.push(message) };
}

test('nothing missing: the test runs, under CI or not', () => {
  for (const env of [{}, { CI: 'true' }]) {
    const t = recorder();
    assert.equal(skipOrFail(t, undefined, env), false);
    assert.deepEqual(t.skipped, []);
  }
});

test('something missing outside CI: skipped with the reason', () => {
  for (const env of [{}, { CI: '' }, { CI: 'false' }, { CI: '0' }]) {
    const t = recorder();
    assert.equal(skipOrFail(t, 'memcached is not installed (apt-get install memcached)', env), true);
    assert.deepEqual(t.skipped, ['memcached is not installed (apt-get install memcached)']);
  }
});

test('something missing under CI: a failure naming it, never a skip', () => {
  for (const ci of ['true', '1']) {
    const t = recorder();
    assert.equal(inCi({ CI: ci }), true);
    assert.throws(() => skipOrFail(t, 'chromium is not installed', { CI: ci }), (e: unknown) => {
      assert.ok(e instanceof MissingRequirementError);
      assert.equal(e.code, 'TEST_REQUIREMENT_MISSING');
      assert.equal(e.message, `chromium is not installed: required under CI=${ci}`);
      return true;
    });
    assert.deepEqual(t.skipped, []);
  }
});
