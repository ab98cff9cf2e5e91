import type { Command } from 'commander';
import { readManifest, writeManifest } from '../../artifacts/manifest';
import { annotationsFileOf, loadAnnotatedDataset } from '../../data/annotations';
import { annotatedDataset, fashionLocDataset, type Dataset } from '../../data/dataset';
import { FASHIONLOC_EVAL_SEED, type FashionLocSplit } from '../../data/fashionloc';
import { loadFashionMnistSplit } from '../../data/idx';
import { deviceHelp, parseDevice } from '../../runtime/execution-providers';
import { evaluateModel } from '../../train/evaluate';
import { parseNumber, table } from '../format';
import { metricsRows } from './train';

export { FASHIONLOC_EVAL_SEED };

export function register(program: Command): void {
  program
    .command('eval')
    .description('per-task metrics of a model folder on FashionLoc or on annotated user data')
    .argument('<model>', 'model folder (with manifest.json and infer.onnx)')
    .requiredOption('--data <source>', 'fashion-mnist (FashionLoc) or DIR/annotations.jsonl')
    .option('--split <split>', 'FashionLoc split: test, val or train', 'test')
    .option('--count <n>', 'FashionLoc samples', '10000')
    .option('--seed <n>', 'FashionLoc rendering seed', String(FASHIONLOC_EVAL_SEED))
    .option('--fashion-mnist <dir>', 'folder of the Fashion-MNIST IDX files')
    .option('--skip-bad', 'skip bad annotation lines with a warning')
    .option('--device <name>', deviceHelp(), 'cpu')
    .option('--threads <n>', 'ONNX Runtime threads (0: all cores)', '0')
    .option('--json', 'print the metrics as JSON')
    .option('--record <name>', 'store the metrics in the model\'s manifest.json under metrics.<name> (e.g. test)')
    .action(async (model: string, opts) => {
      const manifest = await readManifest(model, { verify: true });
      let dataset: Dataset;
      if (opts.data === 'fashion-mnist' || opts.data === 'fashionloc') {
        const split = opts.split as FashionLocSplit;
        if (!['train', 'val', 'test'].includes(split)) throw new Error(`--split must be train, val or test, got ${opts.split}`);
        // FashionLoc's test canvases come from Fashion-MNIST's test split; train and val from its training split.
        const sourceSplit = split === 'test' ? 'test' : 'train';
        const source = { [sourceSplit]: await loadFashionMnistSplit(sourceSplit, opts.fashionMnist) };
        dataset = fashionLocDataset(source, manifest.spec.input, split, {
          seed: parseNumber(opts.seed, '--seed', { integer: true }),
          count: parseNumber(opts.count, '--count', { integer: true, min: 1 }),
        });
      } else {
        const file = annotationsFileOf(opts.data);
        const { samples } = await loadAnnotatedDataset(file, manifest.labels, manifest.spec.input, { skipBad: opts.skipBad });
        dataset = annotatedDataset(samples);
      }
      const started = Date.now();
      const { metrics } = await evaluateModel(model, dataset, {
        device: parseDevice(opts.device),
        threads: parseNumber(opts.threads, '--threads', { integer: true, min: 0 }),
      });
      if (opts.record) {
        const dataset = opts.data === 'fashion-mnist' || opts.data === 'fashionloc' ? { data: 'fashionloc', split: opts.split, count: Number(opts.count), seed: Number(opts.seed) } : { data: opts.data };
        await writeManifest(model, { ...manifest, metrics: { ...manifest.metrics, [opts.record]: { ...metrics, dataset } } });
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ model, samples: dataset.length, metrics })}\n`);
        return;
      }
      process.stdout.write(`${model}: ${metrics.samples} samples, ${metrics.objects} with an object (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
      process.stdout.write(`${table(['metric', 'value'], metricsRows(metrics))}\n\n`);
      process.stdout.write(`${table(['class', 'accuracy'], manifest.labels.map((l, i) => [l, metrics.perClassAccuracy[i] ?? 0]))}\n`);
    });
}
