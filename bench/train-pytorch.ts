/**
 * The PyTorch row of `cirrus bench train`: Debian's python3-torch on one thread trains the same
 * MLP (784-128-10, ReLU, softmax cross-entropy) from the same initial weights with the same
 * optimizer, learning rate and batch size on Fashion-MNIST z-scored the same way (per-pixel mean
 * and population std of the training images; constant pixels become 0), evaluating on the test
 * images after every epoch. The script is written out at bench time and timed from its spawn.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface PytorchSpec {
  dataDir: string;
  /** Little-endian float32 initial weights in the MLP's layout (W0 128x784, b0, W1 10x128, b1), which is torch's Linear layout. */
  weightsFile: string;
  hidden: number;
  batchSize: number;
  lr: number;
  epochs: number;
  target: number;
  seed: number;
}

interface PytorchReport {
  torch: string;
  /** Paths of the BLAS libraries the process mapped. */
  blas: string;
  /** Date.now()-comparable ms: data in memory; each epoch's evaluation. */
  readyAt: number;
  epochs: Array<{ epoch: number; accuracy: number; at: number }>;
}

const SCRIPT = `
import gzip, json, struct, sys, time
import numpy as np
import torch

torch.set_num_threads(1)
spec = json.loads(sys.argv[1])

def idx(name):
    with gzip.open(spec["dataDir"] + "/" + name, "rb") as f:
        data = f.read()
    nd = struct.unpack(">I", data[:4])[0] & 0xFF
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)

xtr = idx("train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32)
xte = idx("t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32)
mean, std = xtr.mean(0, dtype=np.float64), xtr.std(0, dtype=np.float64)
scale = np.where(std > 0, 1 / np.where(std > 0, std, 1), 0).astype(np.float32)
xtr = torch.from_numpy((xtr - mean.astype(np.float32)) * scale)
xte = torch.from_numpy((xte - mean.astype(np.float32)) * scale)
ytr = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
yte = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))

h = spec["hidden"]
model = torch.nn.Sequential(torch.nn.Linear(784, h), torch.nn.ReLU(), torch.nn.Linear(h, 10))
w = np.fromfile(spec["weightsFile"], dtype="<f4")
o = 0
with torch.no_grad():
    for p in (model[0].weight, model[0].bias, model[2].weight, model[2].bias):
        p.copy_(torch.from_numpy(w[o:o + p.numel()].reshape(p.shape)))
        o += p.numel()
opt = torch.optim.Adam(model.parameters(), lr=spec["lr"], betas=(0.9, 0.999), eps=1e-8)
loss_fn = torch.nn.CrossEntropyLoss()
gen = torch.Generator().manual_seed(spec["seed"])
ready = time.time()
epochs = []
n, b = xtr.shape[0], spec["batchSize"]
for epoch in range(1, spec["epochs"] + 1):
    perm = torch.randperm(n, generator=gen)
    for s in range(0, n, b):
        i = perm[s:s + b]
        opt.zero_grad()
        loss_fn(model(xtr[i]), ytr[i]).backward()
        opt.step()
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    epochs.append({"epoch": epoch, "accuracy": acc, "at": time.time() * 1000})
    if acc >= spec["target"]:
        break
# Which BLAS the dynamic linker gave torch: Debian's reference libblas is ~25x slower than OpenBLAS.
with open("/proc/self/maps") as f:
    blas = sorted({l.split()[-1].rsplit("/", 1)[-1] for l in f if "blas" in l.split()[-1].rsplit("/", 1)[-1]})
print(json.dumps({"torch": torch.__version__, "blas": ", ".join(blas) or "unknown", "readyAt": ready * 1000, "epochs": epochs}))
`;

/** The first python3 that imports torch (Debian's lives in /usr/bin, which a pyenv shim may hide). */
export function findTorchPython(): { python: string; version: string } | null {
  for (const python of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { python, version: r.stdout.trim() };
  }
  return null;
}

/** Runs the script; the report's times are wall-clock ms, as are the returned spawn time's. */
export function runPytorch(python: string, work: string, spec: PytorchSpec): { spawnedAt: number; report: PytorchReport } {
  const file = join(work, 'train_mlp.py');
  writeFileSync(file, SCRIPT);
  const spawnedAt = Date.now();
  const r = spawnSync(python, [file, JSON.stringify(spec)], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } });
  if (r.status !== 0) throw new Error(`bench train: the PyTorch script failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return { spawnedAt, report: JSON.parse(r.stdout.trim().split('\n').pop()!) as PytorchReport };
}
