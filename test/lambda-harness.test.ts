/**
 * Training as it runs on AWS: the worker package that `deploy` uploads (to the Lambda stand-in,
 * through the real SDK clients) runs unzipped, with no node_modules, in a fresh process per
 * invocation, inside a network namespace of its own: the client's loopback is unreachable from
 * the workers, so every endpoint they get must be an advertised address. Covers Fashion-MNIST
 * softmax over s3, the parameter server (client-started, advertised, token) and memcached; the MLP
 * on the WASM backend; Higgs-like dense LR against the local launcher; and the runs that must be
 * refused before any invocation (loopback endpoints, a function Timeout shorter than timeoutS).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { deploy } from '../client/deploy/deploy.js';
import { deterministicZip, readZip } from '../client/deploy/zip.js';
import { LambdaLauncher } from '../client/launchers/lambda/index.js';
import { generateHiggsLike } from '../client/datasets/higgs.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { train } from '../client/train.js';
import type { TrainParamsInput } from '../client/train-params.js';
import { startParamServer } from '../paramserver/index.js';
import { LambdaService } from './support/lambda-service.js';
import { networkForTests, type TestNetwork } from './support/netns.js';
import { memcachedMissing } from './support/servers.js';
import { skipOrFail } from './support/skip-or-fail.js';
import { productionPackage } from './support/test-package.js';

const FM_DIR = '/usr/share/datasets/fashion-mnist';
const REGION = 'us-east-1';
const CREDS = { AWS_ACCESS_KEY_ID: 'AKIDCIRRUSTEST', AWS_SECRET_ACCESS_KEY: 'cirrus-test-secret' };

let network: TestNetwork | undefined;
/** Why the harness cannot run here (skipOrFail decides what that means). */
let skip: string | undefined;
let service: LambdaService;
let home: string;
const savedEnv: Record<string, string | undefined> = {};

before(async () => {
  const n = await networkForTests();
  network = n.network;
  skip = n.missing;
  if (!existsSync(join(FM_DIR, 'train-images-idx3-ubyte.gz'))) skip ??= `${FM_DIR} is missing (apt-get install dataset-fashion-mnist)`;
  if (!network || skip) return;
  for (const k of [...Object.keys(CREDS), 'CIRRUS_HOME']) savedEnv[k] = process.env[k];
  Object.assign(process.env, CREDS);
  home = await mkdtemp(join(tmpdir(), 'cirrus-harness-'));
  process.env.CIRRUS_HOME = home;
  service = await LambdaService.start({ region: REGION, execPrefix: network.execPrefix, roleAssumeRejections: 1 });
  const waits = { firstDelayMs: 20, maxDelayMs: 100 };
  const credentials = { accessKeyId: CREDS.AWS_ACCESS_KEY_ID, secretAccessKey: CREDS.AWS_SECRET_ACCESS_KEY };
  const pkg = await productionPackage();
  await deploy({ region: REGION, endpointUrl: service.endpoint, memoryMb: 2048, timeoutS: 300 }, { package: pkg, credentials, waits });
  await deploy({ region: REGION, endpointUrl: service.endpoint, functionName: 'short-worker', memoryMb: 2048, timeoutS: 30 }, { package: pkg, credentials, waits });
  await preprocess({ input: FM_DIR, format: 'fashion-mnist', name: 'fmnist', rowsPerShard: 10_000, normalize: 'minmax' });
  const csv = join(home, 'higgs.csv');
  await generateHiggsLike({ rows: 24_000, seed: 7, file: csv });
  await preprocess({ input: csv, format: 'csv', labelColumn: 0, name: 'higgs', rowsPerShard: 4_000, normalize: 'zscore', seed: 1 });
});

after(async () => {
  await service?.close();
  await network?.close();
  if (home) await rm(home, { recursive: true, force: true });
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const lambda = (functionName = 'cirrus-worker:live') => ({ type: 'lambda' as const, functionName, region: REGION, endpoint: service.endpoint });

/** Softmax on Fashion-MNIST, stopping at 84% (BSP is deterministic: every channel gives the same model). */
const softmax = (channel: string): TrainParamsInput => ({
  dataset: 'fmnist',
  model: 'softmax',
  workers: 4,
  epochs: 10,
  batchSize: 128,
  optimizer: 'adam',
  learningRate: 0.005,
  channel,
  advertise: network!.hostAddress,
  launcher: lambda(),
  stop: { targetAccuracy: 0.84 },
});

interface WorkerValue {
  runtime?: { tfjsBackend: string | null; msgpackr: string; deadlineFrom: string; memoryMb: number | null; node: string };
}

/** What the workers of the invocations since `from` returned. */
function workerValues(from: number): WorkerValue[] {
  return service.invocations.slice(from).flatMap((r) => (r.outcome?.ok ? [JSON.parse(r.outcome.payload) as WorkerValue] : []));
}

describe('workers in their own network, running the deployed package', () => {
  for (const channel of ['s3', 'ps', 'memcached']) {
    test(`Fashion-MNIST softmax with 4 workers reaches 84% over ${channel}`, async (t) => {
      if (skipOrFail(t, skip ?? (channel === 'memcached' ? memcachedMissing() : undefined))) return;
      const from = service.invocations.length;
      const r = await train(softmax(channel));
      assert.ok(r.metrics.testAccuracy >= 0.84, `test accuracy ${r.metrics.testAccuracy}`);
      const runs = service.invocations.slice(from);
      assert.equal(new Set(runs.map((i) => (i.event as { rank: number }).rank)).size, 4);
      // Every endpoint the workers got is the advertised address, never loopback.
      const endpoints = JSON.stringify(runs.map((i) => (i.event as { endpoints: unknown }).endpoints));
      assert.ok(!endpoints.includes('127.0.0.1'), endpoints);
      assert.ok(endpoints.includes(network!.hostAddress), endpoints);
      if (channel === 'ps') assert.match(endpoints, /"token":"[A-Za-z0-9_-]{32}"/);
      for (const v of workerValues(from)) {
        assert.equal(v.runtime?.msgpackr, 'js'); // the bundle carries no native add-on
        assert.equal(v.runtime?.memoryMb, 2048);
      }
    });
  }

  test('the MLP trains on the WASM backend, which every worker reports', async (t) => {
    if (skipOrFail(t, skip)) return;
    const from = service.invocations.length;
    const r = await train({ ...softmax('ps'), model: 'mlp', hidden: [64], epochs: 1, learningRate: 0.002, stop: {} });
    assert.ok(r.metrics.testAccuracy > 0.75, `test accuracy ${r.metrics.testAccuracy}`);
    const values = workerValues(from);
    assert.equal(values.length, 4);
    for (const v of values) assert.equal(v.runtime?.tfjsBackend, 'wasm');
  });

  test('a package without its WASM binaries fails the MLP with the reason, never a silent fallback to JS kernels', async (t) => {
    if (skipOrFail(t, skip)) return;
    const full = await productionPackage();
    const stripped = readZip(full.zip, 'worker.zip').filter((f) => !f.name.endsWith('.wasm'));
    const zip = deterministicZip(stripped);
    await deploy(
      { region: REGION, endpointUrl: service.endpoint, functionName: 'no-wasm-worker', memoryMb: 2048, timeoutS: 300 },
      { package: { ...full, zip, codeSha256: createHash('sha256').update(zip).digest('base64') }, credentials: { accessKeyId: CREDS.AWS_ACCESS_KEY_ID, secretAccessKey: CREDS.AWS_SECRET_ACCESS_KEY }, waits: { firstDelayMs: 20, maxDelayMs: 100 } },
    );
    await assert.rejects(train({ ...softmax('ps'), model: 'mlp', hidden: [16], workers: 1, epochs: 1, stop: {}, launcher: lambda('no-wasm-worker:live') }), {
      code: 'TRAIN_WORKER_FAILED',
      message: /^job \S+: rank 0 \(generation 0, attempt 0\): TRAIN_MODEL_SPEC: rank 0: .*the tfjs WASM backend failed to start \(.*ENOENT.*tfjs-backend-wasm-simd\.wasm.*\); its \.wasm files must sit beside the worker's code/,
    });
  });

  test('Higgs-like dense LR on Lambda gives the local launcher\'s model, bit for bit', async (t) => {
    if (skipOrFail(t, skip)) return;
    const params: TrainParamsInput = { dataset: 'higgs', model: 'dense-lr', workers: 3, epochs: 2, batchSize: 256, learningRate: 0.05, channel: 'ps' };
    const viaLambda = await train({ ...params, advertise: network!.hostAddress, launcher: lambda() });
    const local = await train(params);
    assert.equal(viaLambda.metrics.testAccuracy, local.metrics.testAccuracy);
    assert.deepEqual(Array.from(viaLambda.model.weights), Array.from(local.model.weights));
    assert.ok(local.metrics.testAccuracy > 0.6, `accuracy ${local.metrics.testAccuracy}`);
  });

  test('loopback endpoints are refused before any invocation, naming the field', async (t) => {
    if (skipOrFail(t, skip)) return;
    const count = service.invocations.length;
    const { advertise: _, ...noAdvertise } = softmax('ps');
    await assert.rejects(train(noAdvertise), { code: 'TRAIN_ENDPOINT', message: /^params\.store: the embedded S3 server would listen on 127\.0\.0\.1, which Lambda workers cannot reach/ });
    const ps = await startParamServer({ port: 0 });
    try {
      await assert.rejects(train({ ...softmax(`ps://${ps.address}`) }), {
        code: 'TRAIN_ENDPOINT',
        message: new RegExp(`^endpoints\\.channel\\.address: ps://127\\.0\\.0\\.1:${ps.port} is a loopback address, which Lambda workers cannot reach from their own hosts; give the channel as ps://<host>:<port>\\?token=`),
      });
    } finally {
      await ps.stop();
    }
    await assert.rejects(train({ ...softmax('ps'), store: `file://${home}/s3` }), { code: 'TRAIN_ENDPOINT', message: /^endpoints\.store: file:\/\/.* is a directory on this machine's disk/ });
    await assert.rejects(train({ ...softmax('ps'), advertise: '127.0.0.1' }), { code: 'TRAIN_PARAMS', message: 'params.advertise: 127.0.0.1 is a loopback address; give an address of this machine that the workers can reach' });
    assert.equal(service.invocations.length, count, 'nothing was invoked');
  });

  test('the namespace is a host of its own: a worker handed a loopback endpoint (the check bypassed) cannot reach it', async (t) => {
    if (skipOrFail(t, skip)) return;
    // A launcher handed in directly, with a local-launcher params block, skips the endpoint check.
    const launcher = () => new LambdaLauncher({ functionName: 'cirrus-worker:live', region: REGION, endpoint: service.endpoint, invocationType: 'RequestResponse', concurrency: 2 });
    await assert.rejects(train({ dataset: 'higgs', model: 'dense-lr', workers: 2, epochs: 1, channel: 'ps' }, { launcher }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'TRAIN_WORKER_FAILED');
      assert.match(e.message, /127\.0\.0\.1:\d+/);
      assert.match(e.message, /CHANNEL_UNREACHABLE|ECONNREFUSED/);
      return true;
    });
  });

  test("a function whose Timeout is shorter than timeoutS, or whose memory differs, is refused naming both values", async (t) => {
    if (skipOrFail(t, skip)) return;
    const count = service.invocations.length;
    await assert.rejects(train({ ...softmax('ps'), launcher: { ...lambda('short-worker:live'), timeoutS: 60 } }), {
      code: 'TRAIN_PARAMS',
      message: "params.launcher.timeoutS: 60 s is longer than the Timeout of Lambda function 'short-worker:live' (30 s): Lambda would kill the workers before they checkpoint; set launcher.timeoutS to at most 30, or redeploy with --timeout 60",
    });
    await assert.rejects(train({ ...softmax('ps'), launcher: { ...lambda(), memoryMb: 1024 } }), { code: 'TRAIN_PARAMS', message: /^params\.launcher\.memoryMb: 1024 MB disagrees with the MemorySize of Lambda function 'cirrus-worker:live' \(2048 MB\)/ });
    await assert.rejects(train({ ...softmax('ps'), launcher: lambda('no-such-worker') }), { code: 'TRAIN_LAUNCHER', message: /^params\.launcher\.functionName: Lambda function 'no-such-worker' does not exist in us-east-1; deploy it with `npx cirrus deploy --function no-such-worker`/ });
    assert.equal(service.invocations.length, count, 'nothing was invoked');
  });
});
