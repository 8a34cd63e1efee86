/**
 * ShardedParamClient against real parameter servers (in-process for the routing tests, child
 * processes for the cluster), compared with one unsharded server fed the same pushes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startParamServerCluster } from '../paramserver/cluster.js';
import { ParamClient, PsError, startParamServer, type ParamServer } from '../paramserver/index.js';
import type { ModelConfig, OptimizerConfig, SyncConfig } from '../paramserver/model.js';
import { ShardedParamClient, shardOf, shardRanges } from '../paramserver/sharded.js';
import { CLI, cliEnv } from './support/cli.js';

const SIZE = 23;

function config(optimizer: OptimizerConfig, sync: SyncConfig, size = SIZE): ModelConfig {
  return { size, optimizer, sync };
}

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** Something that takes pushes and pulls: a ParamClient or a ShardedParamClient. */
type Target = Pick<ShardedParamClient, 'createModel' | 'push' | 'pullSparse' | 'pullFull'>;

/**
 * A fixed push sequence for `workers` ranks: sparse pushes spanning every shard (with duplicates
 * and boundary indices), sparse pushes confined to one shard, and dense pushes.
 */
async function train(t: Target, name: string, cfg: ModelConfig, rounds: number): Promise<void> {
  await t.createModel(name, cfg, values(SIZE, 1));
  const workers = cfg.sync.mode === 'async' ? 2 : cfg.sync.workers;
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      Array.from({ length: workers }, (_, rank) => {
        const kind = (round + rank) % 3;
        const seed = 100 * round + rank;
        if (kind === 0) return t.push(name, { rank, clock: round, values: values(SIZE, seed) });
        const indices = kind === 1 ? Uint32Array.of(22, 0, 7, 8, 7, 15, 16, 3) : Uint32Array.of(1, 2, 1);
        return t.push(name, { rank, clock: round, indices, values: values(indices.length, seed) });
      }),
    );
  }
}

describe('shard split rule', () => {
  it('gives shard i [floor(i*S/N), floor((i+1)*S/N)) and shardOf agrees for every index', () => {
    assert.deepEqual(shardRanges(10, 3), [
      { start: 0, end: 3 },
      { start: 3, end: 6 },
      { start: 6, end: 10 },
    ]);
    for (const size of [1, 2, 3, 7, 10, 23, 64, 1000]) {
      for (let n = 1; n <= Math.min(size, 9); n++) {
        const ranges = shardRanges(size, n);
        assert.equal(ranges[0]!.start, 0);
        assert.equal(ranges.at(-1)!.end, size);
        for (let i = 0; i < n; i++) {
          const { start, end } = ranges[i]!;
          assert.ok(end - start >= Math.floor(size / n) && end - start <= Math.ceil(size / n), `size ${size} over ${n}: shard ${i} has ${end - start}`);
          if (i > 0) assert.equal(start, ranges[i - 1]!.end);
          for (let g = start; g < end; g++) assert.equal(shardOf(g, size, n), i, `index ${g} of ${size} over ${n}`);
        }
      }
    }
  });
});

describe('ShardedParamClient over in-process servers', () => {
  let servers: ParamServer[];
  let single: ParamClient;
  let sharded: ShardedParamClient;
  let two: ShardedParamClient;

  before(async () => {
    servers = await Promise.all(Array.from({ length: 6 }, () => startParamServer({ port: 0 })));
    single = await ParamClient.connect(servers[0]!.address);
    sharded = await ShardedParamClient.connect(servers.slice(1, 4).map((s) => s.address));
    two = await ShardedParamClient.connect(servers.slice(4).map((s) => s.address));
  });
  after(async () => {
    await single.close();
    await sharded.close();
    await two.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  const cases: Array<[string, ModelConfig]> = [
    ['async adam', config({ type: 'adam', learningRate: 0.01, l2: 0.01 }, { mode: 'async' })],
    ['ssp momentum', config({ type: 'momentum', learningRate: 0.05 }, { mode: 'ssp', workers: 3, staleness: 1 })],
    ['bsp adagrad (mean)', config({ type: 'adagrad', learningRate: 0.1 }, { mode: 'bsp', workers: 3, reduce: 'mean' })],
    ['bsp nesterov (sum)', config({ type: 'nesterov', learningRate: 0.02 }, { mode: 'bsp', workers: 2 })],
  ];
  for (const [label, cfg] of cases) {
    it(`${label}: 2 and 3 shards give the same model as one server, bit for bit`, async () => {
      const name = `same-${label}`;
      // Async applies pushes in arrival order, so its ranks push one after another there.
      const run = async (t: Target) => {
        if (cfg.sync.mode !== 'async') return train(t, name, cfg, 6);
        await t.createModel(name, cfg, values(SIZE, 1));
        for (let round = 0; round < 6; round++) {
          const indices = round % 2 ? Uint32Array.of(22, 0, 7, 8, 7, 15, 16, 3) : Uint32Array.of(1, 2, 1);
          await t.push(name, { rank: 0, clock: round, indices, values: values(indices.length, round) });
          await t.push(name, { rank: 1, clock: round, values: values(SIZE, 50 + round) });
        }
      };
      await run(single);
      await run(sharded);
      await run(two);
      const want = await single.pullFull(name);
      const got3 = await sharded.pullFull(name);
      const got2 = await two.pullFull(name);
      assert.deepEqual(got3.values, want.values);
      assert.deepEqual(got2.values, want.values);
      // Async skips shards without indices, so the sharded clock is the least-pushed shard's
      // (6 dense + 3 spanning pushes of 12); in ssp/bsp every shard is pushed every step.
      assert.equal(got3.clock, cfg.sync.mode === 'async' ? 9 : want.clock);
      assert.equal(got2.clock, cfg.sync.mode === 'async' ? 9 : want.clock);
      const probe = Uint32Array.of(22, 0, 7, 8, 7, 15, 16, 3, 11, 5, 6);
      assert.deepEqual((await sharded.pullSparse(name, probe)).values, (await single.pullSparse(name, probe)).values);
      assert.deepEqual((await single.pullSparse(name, probe)).values, Float32Array.from(probe, (i) => want.values[i]!));
    });
  }

  it('pullSparse keeps request order across shards, duplicates included', async () => {
    const init = Float32Array.from({ length: SIZE }, (_, i) => 100 + i);
    await sharded.createModel('order', config({ type: 'sgd', learningRate: 1 }, { mode: 'async' }), init);
    const indices = Uint32Array.of(22, 0, 15, 8, 8, 7, 16, 21, 1, 0);
    const { values: got } = await sharded.pullSparse('order', indices);
    assert.deepEqual(Array.from(got), [122, 100, 115, 108, 108, 107, 116, 121, 101, 100]);
    assert.deepEqual((await sharded.pullSparse('order', new Uint32Array(0))).values, new Float32Array(0));
  });

  it('routes boundary indices to the right shard at local index = global - offset', async () => {
    // SIZE 23 over 3 shards: [0, 7), [7, 15), [15, 23).
    await sharded.createModel('bounds', config({ type: 'sgd', learningRate: 1 }, { mode: 'async' }));
    await sharded.push('bounds', { rank: 0, clock: 0, indices: Uint32Array.of(6, 7, 14, 15, 22, 0), values: Float32Array.of(-1, -2, -3, -4, -5, -6) });
    const slices = await Promise.all(sharded.clients.map((c) => c.pullFull('bounds')));
    assert.deepEqual(Array.from(slices[0]!.values), [6, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(Array.from(slices[1]!.values), [2, 0, 0, 0, 0, 0, 0, 3]);
    assert.deepEqual(Array.from(slices[2]!.values), [4, 0, 0, 0, 0, 0, 0, 5]);
  });

  it('in ssp every shard clock advances even when a push touches one shard', async () => {
    await sharded.createModel('clocks', config({ type: 'sgd', learningRate: 1 }, { mode: 'ssp', workers: 1, staleness: 0 }));
    const clock = await sharded.push('clocks', { rank: 0, clock: 0, indices: Uint32Array.of(2), values: Float32Array.of(1) });
    assert.equal(clock, 1);
    const clocks = await Promise.all(sharded.clients.map((c) => c.pullFull('clocks', { minClock: 1, timeoutMs: 2000 }).then((r) => r.clock)));
    assert.deepEqual(clocks, [1, 1, 1]);
    // A pull waiting for clock 1 is answered by every shard.
    const pulled = await sharded.pullSparse('clocks', Uint32Array.of(20), { minClock: 1, timeoutMs: 2000 });
    assert.equal(pulled.clock, 1);
  });

  it('in async only the shards with indices are pushed to', async () => {
    await sharded.createModel('lazy', config({ type: 'sgd', learningRate: 1 }, { mode: 'async' }));
    await sharded.push('lazy', { rank: 0, clock: 0, indices: Uint32Array.of(16), values: Float32Array.of(1) });
    const clocks = await Promise.all(sharded.clients.map((c) => c.pullFull('lazy').then((r) => r.clock)));
    assert.deepEqual(clocks, [0, 0, 1]);
  });

  it('rejects bad input before sending, naming the problem', async () => {
    const isPs = (code: string, message: string) => (err: unknown) => err instanceof PsError && err.code === code && err.message === message;
    await assert.rejects(sharded.push('bounds', { rank: 0, clock: 1, indices: Uint32Array.of(3, 23), values: Float32Array.of(1, 1) }), isPs('PS_RANGE', "index 23 at position 1 is out of range for model 'bounds' of size 23"));
    await assert.rejects(sharded.pullSparse('nope', Uint32Array.of(1)), isPs('PS_ARGUMENT', "model 'nope' is unknown to this sharded client: call createModel first (it joins an existing model)"));
    await assert.rejects(sharded.createModel('tiny', config({ type: 'sgd', learningRate: 1 }, { mode: 'async' }, 2)), isPs('PS_ARGUMENT', "model 'tiny' of size 2 cannot be split over 3 shards (each needs at least one weight)"));
    await assert.rejects(sharded.push('bounds', { rank: 0, clock: 1, values: new Float32Array(5) }), isPs('PS_ARGUMENT', "dense gradient for model 'bounds' has 5 values, the model size is 23"));
  });

  it('dropModel drops every slice', async () => {
    await sharded.createModel('gone', config({ type: 'sgd', learningRate: 1 }, { mode: 'async' }));
    assert.equal(await sharded.dropModel('gone'), true);
    assert.deepEqual(await Promise.all(sharded.clients.map((c) => c.dropModel('gone'))), [false, false, false]);
    assert.equal(await sharded.dropModel('gone'), false);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('parameter-server cluster (child processes)', () => {
  it('starts 2 shards that answer PING and train like one server; stop() leaves no process', async () => {
    const cluster = await startParamServerCluster({ shards: 2 });
    try {
      assert.equal(cluster.addresses.length, 2);
      assert.notEqual(cluster.addresses[0], cluster.addresses[1]);
      for (const address of cluster.addresses) {
        const c = await ParamClient.connect(address);
        await c.ping();
        await c.close();
      }
      const client = await ShardedParamClient.connect(cluster.addresses);
      const server = await startParamServer({ port: 0 });
      const one = await ParamClient.connect(server.address);
      try {
        const cfg = config({ type: 'adam', learningRate: 0.01 }, { mode: 'bsp', workers: 2 });
        await train(client, 'm', cfg, 4);
        await train(one, 'm', cfg, 4);
        assert.deepEqual((await client.pullFull('m')).values, (await one.pullFull('m')).values);
      } finally {
        await client.close();
        await one.close();
        await server.stop();
      }
    } finally {
      await cluster.stop();
    }
    assert.deepEqual(cluster.pids.map(alive), [false, false]);
  });

  it('snapshots each shard under <url>/shard-i and restores the sharded model bit-exact', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cirrus-ps-cluster-'));
    try {
      const url = pathToFileURL(dir).href;
      const cfg = config({ type: 'adam', learningRate: 0.01 }, { mode: 'ssp', workers: 2, staleness: 0 });
      let before: Float32Array;
      const first = await startParamServerCluster({ shards: 2, snapshotUrl: url });
      try {
        const client = await ShardedParamClient.connect(first.addresses);
        await train(client, 'm', cfg, 3);
        before = (await client.pullFull('m')).values;
        const ids = await Promise.all(client.clients.map((c) => c.snapshot()));
        assert.deepEqual((await readdir(dir)).sort(), ['shard-0', 'shard-1']);
        assert.deepEqual(await readdir(join(dir, 'shard-1')), [ids[1]]);
        await client.close();
      } finally {
        await first.stop();
      }
      const second = await startParamServerCluster({ shards: 2, snapshotUrl: url, restore: true });
      try {
        const client = await ShardedParamClient.connect(second.addresses);
        await client.createModel('m', cfg); // joins the restored slices
        assert.deepEqual((await client.pullFull('m')).values, before);
        await client.close();
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('with a token, shards refuse clients without it', async () => {
    const cluster = await startParamServerCluster({ shards: 2, token: 'sesame' });
    try {
      const good = await ShardedParamClient.connect(cluster.addresses, { token: 'sesame' });
      await good.ping();
      await good.close();
      await assert.rejects(ShardedParamClient.connect(cluster.addresses, { token: 'wrong' }), (err: unknown) => err instanceof PsError && err.code === 'PS_UNAUTHORIZED');
    } finally {
      await cluster.stop();
    }
    assert.deepEqual(cluster.pids.map(alive), [false, false]);
  });

  it('a shard that cannot start fails the cluster, names the shard, and stops the others', async () => {
    const blocker = await startParamServer({ port: 0 });
    try {
      // Shard 0 would take the blocker's port.
      await assert.rejects(startParamServerCluster({ shards: 2, port: blocker.port }), (err: unknown) => {
        assert.ok(err instanceof PsError && err.code === 'PS_LISTEN', String(err));
        assert.match(err.message, /^parameter-server shard [01] exited before listening \(code 2\): paramserver: .*EADDRINUSE/);
        return true;
      });
      // Whichever shard did start was stopped again: no server child of this process is left.
      const children = execFileSync('ps', ['-o', 'args=', '--ppid', String(process.pid)], { encoding: 'utf8' }).split('\n');
      assert.deepEqual(children.filter((line) => line.includes('paramserver/main.js')), []);
    } finally {
      await blocker.stop();
    }
    await assert.rejects(startParamServerCluster({ shards: 0 }), { code: 'PS_ARGUMENT', message: 'shards must be an integer >= 1, got 0' });
  });

  it('`cirrus ps --shards 2` prints both addresses and stops them on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, 'ps', '--shards', '2', '--port', '0'], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^listening (.+)$/m.exec(out);
        if (m) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`cirrus ps exited with ${code}: ${stderr}`)));
    });
    const addresses = line.split(',');
    assert.equal(addresses.length, 2);
    for (const a of addresses) assert.match(a, /^127\.0\.0\.1:\d+$/);
    const client = await ShardedParamClient.connect(addresses);
    await client.ping();
    await client.close();
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    for (const a of addresses) await assert.rejects(ParamClient.connect(a, { timeoutMs: 2000 }), { code: 'PS_UNREACHABLE' });
  });
});
