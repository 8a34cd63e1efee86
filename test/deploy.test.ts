/**
 * `cirrus deploy` against the Lambda and IAM stand-in (test/support/lambda-service.ts), driven
 * through the real AWS SDK clients: create (with a role that is not assumable at first), update
 * with new code, no change on the same package, a configuration change, remove; packages over
 * Lambda's limits refused; and the package itself: reproducible, small, loadable with no
 * node_modules anywhere above it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { CreateFunctionCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { zipSync } from 'fflate';
import { deploy, removeDeployment } from '../client/deploy/deploy.js';
import { buildWorkerPackage, LAMBDA_UNZIPPED_LIMIT, LAMBDA_ZIPPED_LIMIT, type WorkerPackage } from '../client/deploy/package.js';
import { readZip } from '../client/deploy/zip.js';
import { probePackage } from '../client/deploy/emulator/probe.js';
import { runCli } from './support/cli.js';
import { LambdaService } from './support/lambda-service.js';
import { productionPackage, testPackage } from './support/test-package.js';

const CREDENTIALS = { accessKeyId: 'AKIDCIRRUSTEST', secretAccessKey: 'cirrus-test-secret' };
const FAST = { firstDelayMs: 10, maxDelayMs: 50, roleTimeoutMs: 20_000, readyTimeoutMs: 20_000 };

let service: LambdaService;
let work: string;

before(async () => {
  service = await LambdaService.start({ region: 'us-east-1', pendingMs: 150, updateMs: 150, roleAssumeRejections: 2 });
  work = await mkdtemp(join(tmpdir(), 'cirrus-deploy-test-'));
});

after(async () => {
  await service.close();
  await rm(work, { recursive: true, force: true });
});

const base = () => ({ region: 'us-east-1', endpointUrl: service.endpoint, store: 's3://cirrus-data/jobs' });

function invokeClient(): LambdaClient {
  return new LambdaClient({ region: 'us-east-1', endpoint: service.endpoint, credentials: CREDENTIALS, maxAttempts: 1 });
}

/** An event the production handler answers without any server: its store is memory:// and has no shard. */
const probeEvent = { jobId: 'probe', rank: 0, world: 1, attempt: 0, deadlineMs: Date.now() + 600_000, task: { type: 'dataset-stats', shards: ['missing.shard'] }, endpoints: { store: 'memory://' } };

function writesIn(calls: readonly string[]): string[] {
  return calls.filter((c) => !/^(Get|List)/.test(c));
}

test('the package is reproducible, small, and loads from an empty directory with no node_modules above it', async () => {
  const a = await buildWorkerPackage();
  const b = await buildWorkerPackage();
  assert.equal(a.sha256, b.sha256);
  assert.deepEqual(Buffer.from(a.zip), Buffer.from(b.zip));
  assert.ok(a.zippedBytes <= 5 * 1024 * 1024, `${a.zippedBytes} bytes zipped`);
  assert.deepEqual(a.files.map((f) => f.name), ['index.mjs', 'index.mjs.LEGAL.txt', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm', 'tfjs-backend-wasm.wasm']);
  assert.equal(a.codeSha256, createHash('sha256').update(a.zip).digest('base64'));

  // The CLI's dry run writes the same bytes, twice.
  for (let i = 0; i < 2; i++) {
    const out = join(work, `w${i}.zip`);
    const r = await runCli(['deploy', '--dry-run', '--out', out], { cwd: work });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${out}\nsha256 ${a.sha256}\n`);
    assert.match(r.stderr, /deploy: built the worker package: [\d.]+ MiB zipped/);
    assert.match(r.stderr, /deploy: checked: unpacked in an empty directory with no node_modules, it loads in \d+ ms and answers a probe event/);
    assert.equal(createHash('sha256').update(await readFile(out)).digest('hex'), a.sha256);
  }
  const noOut = await runCli(['deploy', '--dry-run'], { cwd: work });
  assert.equal(noOut.code, 1);
  assert.match(noOut.stderr, /DEPLOY_OPTIONS: --dry-run: give --out <zip>/);

  // Unzipped where Node finds no node_modules, the handler loads and runs.
  const dir = await mkdtemp(join(tmpdir(), 'cirrus-unzipped-'));
  try {
    for (let d = dir; dirname(d) !== d; d = dirname(d)) assert.equal(existsSync(join(d, 'node_modules')), false, `${d} has node_modules`);
    for (const f of readZip(a.zip, 'w.zip')) await writeFile(join(dir, f.name), f.bytes);
    const script = `const m = await import('./index.mjs'); try { await m.handler(${JSON.stringify(probeEvent)}, { getRemainingTimeInMillis: () => 60000 }); } catch (e) { console.log(typeof m.handler, e.code); }`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, env: { PATH: process.env.PATH ?? '' } });
    assert.equal(stdout.trim(), 'function SHARD_MISSING');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the dry run\'s probe refuses a package that does not run on its own, naming why', async () => {
  const broken: WorkerPackage = { ...(await productionPackage()) };
  broken.zip = zipSync({ 'index.mjs': new TextEncoder().encode("import 'some-module-the-package-does-not-carry';\nexport const handler = async () => 1;\n") });
  await assert.rejects(probePackage(broken), { code: 'DEPLOY_PACKAGE_INVALID', message: /^the package does not run on its own: .*answered a probe event with Runtime\.ImportModuleError: .*some-module-the-package-does-not-carry/ });
  broken.zip = zipSync({ 'index.mjs': new TextEncoder().encode('export const handler = async () => ({ fine: true });\n') });
  await assert.rejects(probePackage(broken), { code: 'DEPLOY_PACKAGE_INVALID', message: /answered a probe event with a result \(\{"fine":true\}\); expected the error "shard 'probe\.shard' does not exist in memory:\/\/"/ });
  const ok = await probePackage(await productionPackage());
  assert.ok(ok.initMs > 0);
});

test('deploy creates the role and the function (retrying while the role propagates), publishes and aliases it; the deployed package runs', async () => {
  const steps: string[] = [];
  const pkg = await productionPackage();
  const r = await deploy({ ...base(), memoryMb: 1024, timeoutS: 60 }, { package: pkg, credentials: CREDENTIALS, waits: FAST, onStep: (l) => steps.push(l) });
  assert.equal(r.functionName, 'cirrus-worker');
  assert.equal(r.version, '1');
  assert.equal(r.aliasArn, `${service.arn('cirrus-worker')}:live`);
  assert.equal(r.sha256, pkg.sha256);
  assert.deepEqual(r.actions, [
    'created role cirrus-worker-role',
    'attached AWSLambdaBasicExecutionRole',
    'granted S3 access to s3://cirrus-data/jobs/',
    'created function cirrus-worker',
    'published version 1',
    'created alias live -> version 1',
  ]);
  // The new role failed its first two CreateFunction calls, as on AWS while it propagates.
  assert.equal(steps.filter((s) => s.includes('cannot assume role')).length, 2);
  assert.deepEqual(service.calls.filter((c) => c === 'CreateFunction'), ['CreateFunction', 'CreateFunction', 'CreateFunction']);
  const config = service.functionConfiguration('cirrus-worker')!;
  assert.equal(config.MemorySize, 1024);
  assert.equal(config.Timeout, 60);
  assert.equal(config.Handler, 'index.handler');
  assert.equal(config.CodeSha256, pkg.codeSha256);
  assert.equal(config.State, 'Active');
  const role = service.iam.roles.get('cirrus-worker-role')!;
  assert.equal(r.roleArn, role.arn);
  assert.deepEqual([...role.attached], ['arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole']);
  const storeDoc = JSON.parse(role.inline.get('cirrus-store-access')!) as { Statement: Array<{ Resource: string }> };
  assert.equal(storeDoc.Statement[0]!.Resource, 'arn:aws:s3:::cirrus-data/jobs/*');

  // The alias runs the uploaded package: the production handler answers from its bundle.
  const client = invokeClient();
  try {
    const out = await client.send(new InvokeCommand({ FunctionName: 'cirrus-worker:live', Payload: Buffer.from(JSON.stringify(probeEvent)) }));
    assert.equal(out.FunctionError, 'Unhandled');
    assert.equal(out.ExecutedVersion, '1');
    const body = JSON.parse(Buffer.from(out.Payload!).toString('utf8')) as { errorType: string; errorMessage: string };
    assert.deepEqual([body.errorType, body.errorMessage], ['Cirrus.SHARD_MISSING', "shard 'missing.shard' does not exist in memory://"]);
  } finally {
    client.destroy();
  }
});

test('re-running with the same package changes nothing; new code and a new memory size are updates with a new version', async () => {
  const pkg = await productionPackage();
  const opts = { ...base(), memoryMb: 1024, timeoutS: 60 };
  const calls = service.calls.length;
  const iamCalls = service.iam.calls.length;
  const same = await deploy(opts, { package: pkg, credentials: CREDENTIALS, waits: FAST });
  assert.deepEqual(same.actions, []);
  assert.equal(same.version, '1');
  assert.deepEqual(writesIn(service.calls.slice(calls)), []);
  assert.deepEqual(writesIn(service.iam.calls.slice(iamCalls)), []);

  // New code: the test package (another handler entry).
  const other = await testPackage();
  const updated = await deploy(opts, { package: other, credentials: CREDENTIALS, waits: FAST });
  assert.deepEqual(updated.actions, ['updated the code of cirrus-worker', 'published version 2', 'pointed alias live at version 2']);
  assert.equal(service.functionConfiguration('cirrus-worker')!.CodeSha256, other.codeSha256);

  const bigger = await deploy({ ...opts, memoryMb: 2048 }, { package: other, credentials: CREDENTIALS, waits: FAST });
  assert.deepEqual(bigger.actions, ['updated the configuration of cirrus-worker (memory 1024 -> 2048 MB)', 'published version 3', 'pointed alias live at version 3']);
  assert.equal(service.functionConfiguration('cirrus-worker')!.MemorySize, 2048);
});

test('packages over Lambda limits, and settings outside them, are refused naming the limit', async () => {
  const requests = service.requests;
  const fake = (zipped: number, unzipped: number): WorkerPackage => ({ zip: new Uint8Array(0), sha256: '', codeSha256: '', files: [], zippedBytes: zipped, unzippedBytes: unzipped, handler: 'index.handler' });
  await assert.rejects(deploy(base(), { package: fake(LAMBDA_ZIPPED_LIMIT + 1, 1), credentials: CREDENTIALS }), { code: 'DEPLOY_PACKAGE_TOO_LARGE', message: /is 50\.0 MiB \(52428801 bytes\) zipped, over Lambda's limit of 50\.0 MiB/ });
  await assert.rejects(deploy(base(), { package: fake(1, LAMBDA_UNZIPPED_LIMIT + 1), credentials: CREDENTIALS }), { code: 'DEPLOY_PACKAGE_TOO_LARGE', message: /unzipped, over Lambda's limit of 250\.0 MiB/ });
  await assert.rejects(deploy({ ...base(), memoryMb: 64 }, { credentials: CREDENTIALS }), { code: 'DEPLOY_OPTIONS', message: "--memory: expected at least 128 MB (Lambda's minimum)" });
  await assert.rejects(deploy({ ...base(), timeoutS: 901 }, { credentials: CREDENTIALS }), { code: 'DEPLOY_OPTIONS', message: "--timeout: expected at most 900 s (Lambda's maximum)" });
  assert.equal(service.requests, requests, 'nothing was sent');

  // The stand-in enforces the same limits on whoever calls it.
  const client = invokeClient();
  const role = service.readyRole();
  try {
    const create = (zip: Uint8Array, extra: Record<string, unknown> = {}) =>
      client.send(new CreateFunctionCommand({ FunctionName: 'too-big', Runtime: 'nodejs20.x', Role: role, Handler: 'index.handler', Code: { ZipFile: zip }, ...extra }));
    await assert.rejects(create(randomBytes(LAMBDA_ZIPPED_LIMIT + 1024)), { name: 'RequestEntityTooLargeException' });
    const bomb = zipSync({ 'zeros.bin': [new Uint8Array(LAMBDA_UNZIPPED_LIMIT + 1), { level: 1 }] });
    await assert.rejects(create(bomb), { name: 'InvalidParameterValueException', message: 'Unzipped size must be smaller than 262144000 bytes' });
    const small = (await productionPackage()).zip;
    await assert.rejects(create(small, { Timeout: 901 }), { name: 'ValidationException', message: /Value '901' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900/ });
    await assert.rejects(create(small, { MemorySize: 127 }), { name: 'ValidationException', message: /'memorySize'.*greater than or equal to 128/ });
  } finally {
    client.destroy();
  }
});

test('the CLI deploys and removes: the function, its versions and the role it created are gone', async () => {
  const env = { AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey };
  const args = ['deploy', '--function', 'cli-worker', '--memory', '512', '--timeout', '30', '--region', 'us-east-1', '--endpoint-url', service.endpoint];
  const created = await runCli(args, { cwd: work, env });
  assert.equal(created.code, 0, created.stderr);
  assert.equal(created.stdout.split('\n')[0], `${service.arn('cli-worker')}:live`);
  assert.match(created.stderr, /deploy: created role cli-worker-role\n/);
  assert.match(created.stderr, /deploy: created function cli-worker\n/);
  assert.match(created.stderr, /deploy: published version 1\n/);
  const again = await runCli(args, { cwd: work, env });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /deploy: nothing to change: cli-worker:live already runs this package \(version 1\)/);

  const removed = await runCli([...args, '--remove'], { cwd: work, env });
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stderr, /deleted function cli-worker \(its versions and aliases with it\)\ndeploy: deleted role cli-worker-role/);
  assert.equal(service.functionConfiguration('cli-worker'), undefined);
  assert.equal(service.iam.roles.has('cli-worker-role'), false);
  await removeDeployment({ ...base(), functionName: 'cirrus-worker' }, { credentials: CREDENTIALS });
  assert.equal(service.functionConfiguration('cirrus-worker'), undefined);
});
