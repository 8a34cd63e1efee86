/**
 * Quick start on the embedded defaults (no configuration): generates a Higgs-like dataset,
 * preprocesses it into the embedded S3 server (data under .cirrus/), normalizes it with a fan-out
 * of workers, and trains dense logistic regression with 2 stateless worker processes that
 * exchange gradients through the in-process parameter server.
 *
 *   npm run example        (or: node dist/examples/quickstart.js)
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import cirrus, { cirrusHome } from '../client/index.js';

async function main(): Promise<void> {
  const dir = join(cirrusHome(), 'examples');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'higgs-50k.csv');
  console.log(`generating 50,000 Higgs-like rows in ${file}`);
  const truth = await cirrus.datasets.generate({ kind: 'higgs', rows: 50_000, seed: 1, file });
  console.log(`  positive rate ${truth.positiveRate.toFixed(3)}`);

  console.log('preprocessing: shards into the embedded S3 server, z-score by a fan-out of workers');
  const manifest = await cirrus.preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs-quickstart', normalize: 'zscore', rowsPerShard: 5_000, overwrite: true });
  console.log(`  ${manifest.trainRows} train rows in ${manifest.train.shards.length} shards, ${manifest.testRows} test rows`);

  console.log('training dense logistic regression: 2 workers, GA-SGD, BSP, parameter-server channel');
  const result = await cirrus.train(
    { dataset: 'higgs-quickstart', model: 'dense-lr', workers: 2, epochs: 4, batchSize: 128, optimizer: 'momentum', learningRate: 0.05 },
    {
      onEpochEnd: (epoch, l) =>
        console.log(`  epoch ${epoch}: test loss ${l.testLoss.toFixed(4)}, test accuracy ${(100 * l.testAccuracy).toFixed(2)}%, AUC ${l.testAuc?.toFixed(4) ?? '-'} (${l.wallSeconds.toFixed(1)} s)`),
    },
  );
  const m = result.metrics;
  console.log(`done: test accuracy ${(100 * m.testAccuracy).toFixed(2)}%, ${m.steps} updates in ${m.wallSeconds.toFixed(1)} s, estimated cost on AWS $${result.cost.usd.toExponential(2)}`);
  const sample = result.model.predictPreparedRows([Array.from({ length: 28 }, () => 0)]);
  console.log(`P(signal) for an all-average event: ${sample[0]!.toFixed(3)}`);
}

main().catch((e: unknown) => {
  const err = e as Error & { code?: string };
  console.error(`${err.code ? `${err.code}: ` : ''}${err.message}`);
  process.exit(1);
});
