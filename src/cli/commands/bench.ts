import type { Command } from 'commander';
import { benchMtl, formatMtlTable } from '../../bench/mtl';
import { benchPipeline, benchTrainStep } from '../../bench/train';
import { benchInfer } from '../../bench/infer';
import { benchTrunk, STEPS_PER_RUN } from '../../bench/trunk';
import { parseWeightingSpec, WEIGHTING_NAMES, weightingHelp } from '../../model/weighting/index';
import { formatNumber, parseNumber, parseTaskWeights, table } from '../format';
import { resolveSpec } from './export';

export function register(program: Command): void {
  const bench = program.command('bench').description('benchmarks that print figures measured side by side in one run');
  bench
    .command('train')
    .description('train step vs forward pass (and PyTorch where installed); end-to-end training vs bare step')
    .option('--arch <name|spec.json>', 'architecture for the step benchmark', 'seed')
    .option('--batch <n>', 'batch size', '64')
    .option('--threads <n>', 'ONNX Runtime (and PyTorch) threads', '2')
    .option('--steps <n>', 'timed steps (median reported)', '30')
    .option('--rounds <n>', 'turns Trident and PyTorch take, alternately, to share the timed steps', '5')
    .option('--no-torch', 'skip the PyTorch comparison')
    .option('--no-pipeline', 'skip the end-to-end data pipeline benchmark')
    .option('--json', 'print the figures as JSON')
    .action(async (opts) => {
      const spec = await resolveSpec(opts.arch);
      const batch = parseNumber(opts.batch, '--batch', { integer: true, min: 1 });
      const threads = parseNumber(opts.threads, '--threads', { integer: true, min: 1 });
      const steps = parseNumber(opts.steps, '--steps', { integer: true, min: 1 });
      const rounds = parseNumber(opts.rounds, '--rounds', { integer: true, min: 1 });
      const step = await benchTrainStep({ spec, batch, threads, steps, rounds, torch: opts.torch });
      const pipeline = opts.pipeline ? await benchPipeline(await resolveSpec('fashionloc'), batch, threads, Math.min(steps, 40)) : undefined;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ arch: spec.name, batch, threads, step, pipeline })}\n`);
        return;
      }
      const rows: (string | number)[][] = [
        [`trident train step (ms, median; ${step.stepsPerRun} steps per run)`, step.stepMs],
        ['trident train step (ms, median; 1 step per run)', step.singleStepMs],
        ['trident forward only (ms, median)', step.forwardMs],
        ['step / forward', step.stepMs / step.forwardMs],
      ];
      if (step.torch) {
        for (const [setup, label] of [['issue', 'as the issue sets it up'], ['tuned', 'tuned (see bench/train.ts)']] as const) {
          const t = step.torch[setup];
          rows.push(
            [`pytorch ${label}: train step (ms)`, t.stepMs],
            [`pytorch ${label}: forward (ms)`, t.forwardMs],
            [`trident step / pytorch step (${setup})`, step.stepMs / t.stepMs],
            [`  per round: lowest … highest`, `${formatNumber(Math.min(...t.stepRatioPerRound))} … ${formatNumber(Math.max(...t.stepRatioPerRound))}`],
          );
        }
      } else rows.push(['pytorch', opts.torch ? 'not installed (apt-get install python3-torch)' : 'skipped']);
      process.stdout.write(`${spec.name}, batch ${batch}, ${threads} threads, Adam, ${rounds} alternating rounds${step.torch ? `, PyTorch on ${step.torch.blas}` : ''}\n${table(['measure', 'value'], rows)}\n`);
      if (pipeline) {
        const cost = 1 - pipeline.endToEndImagesPerSecond / pipeline.bareImagesPerSecond;
        process.stdout.write(`\nfashionloc, batch ${batch}: end-to-end training vs bare train step\n`);
        process.stdout.write(`${table(['measure', 'value'], [
          ['end to end (img/s)', pipeline.endToEndImagesPerSecond],
          ['bare step (img/s)', pipeline.bareImagesPerSecond],
          ['data pipeline cost', `${formatNumber(cost * 100)} %`],
        ])}\n`);
      }
    });
  bench
    .command('trunk')
    .description('cost of BatchNorm, global average pooling, label smoothing, residual shortcuts (train step) and geometric augmentation (data), side by side')
    .option('--batch <n>', 'batch size', '64')
    .option('--threads <n>', 'ONNX Runtime threads', '2')
    .option('--runs <n>', `runs of ${STEPS_PER_RUN} steps per variant per round`, '2')
    .option('--rounds <n>', 'rounds; every variant takes a turn in each', '4')
    .option('--fashion-mnist <dir>', 'folder of the Fashion-MNIST IDX files (for the augmentation timing)')
    .option('--json', 'print the figures as JSON')
    .action(async (opts) => {
      const batch = parseNumber(opts.batch, '--batch', { integer: true, min: 1 });
      const threads = parseNumber(opts.threads, '--threads', { integer: true, min: 1 });
      const runs = parseNumber(opts.runs, '--runs', { integer: true, min: 1 });
      const rounds = parseNumber(opts.rounds, '--rounds', { integer: true, min: 1 });
      const result = await benchTrunk({ batch, threads, runs, rounds, fashionMnist: opts.fashionMnist });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ batch, threads, rounds, ...result })}\n`);
        return;
      }
      const rows = result.steps.map((s) => [s.name, s.stepMs, s.against ? `${formatNumber(s.ratio!)} × ${s.against}` : 'baseline']);
      process.stdout.write(`train step, batch ${batch}, ${threads} threads, Adam, ${rounds} rounds of every variant in turn (medians)\n`);
      process.stdout.write(`${table(['variant', 'step (ms)', 'relative'], rows)}\n`);
      const a = result.augmentation;
      if (a && 'skipped' in a) process.stdout.write(`\naugmentation: skipped (${a.skipped})\n`);
      else if (a) {
        process.stdout.write(`\nFashionLoc batch of ${batch} prepared on the main thread (rendered, augmented, collated; overlaps the steps in training)\n`);
        process.stdout.write(`${table(['measure', 'value'], [
          ['flips + brightness (ms per batch)', a.flipBrightnessMs],
          ['+ translation 0.1 and scale jitter 0.15 (ms per batch)', a.geometricMs],
          ['ratio', a.ratio],
          ['extra, as a share of the fashionloc step', `${formatNumber(a.shareOfStep * 100)} %`],
        ])}\n`);
      }
    });
  bench
    .command('infer')
    .description('infer.onnx latency of model folders side by side (calls alternate between them), each against the first')
    .argument('<models...>', 'model folders, e.g. models/fashionloc/3 runs/new-model')
    .option('--batch <n>', 'batch size', '1')
    .option('--threads <n>', 'ONNX Runtime threads per session', '1')
    .option('--calls <n>', 'timed calls per model', '500')
    .option('--json', 'print the figures as JSON')
    .action(async (models: string[], opts) => {
      const batch = parseNumber(opts.batch, '--batch', { integer: true, min: 1 });
      const threads = parseNumber(opts.threads, '--threads', { integer: true, min: 1 });
      const calls = parseNumber(opts.calls, '--calls', { integer: true, min: 1 });
      const result = await benchInfer({ models, batch, threads, calls });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ batch, threads, calls, ...result })}\n`);
        return;
      }
      process.stdout.write(`infer.onnx, batch ${batch}, ${threads} thread(s), ${calls} calls each, models taking turns call by call\n`);
      process.stdout.write(`${table(['model', 'median (ms)', 'p90 (ms)', 'median / first'], result.models.map((m) => [`${m.name} (${m.dir})`, m.medianMs, m.p90Ms, m.ratio]))}\n`);
    });
  bench
    .command('mtl')
    .description('single-task models and the multi-task model per weighting strategy under one budget: per-task test metrics, Δm, train time, step and inference cost')
    .option('--arch <name|spec.json>', 'architecture', 'fashionloc')
    .option('--budget <samples>', 'training samples each model sees', '20000')
    .option('--strategies <list>', 'weighting strategies, comma-separated, each NAME or NAME:key=value[:key=value]', WEIGHTING_NAMES.join(','))
    .option('--epochs <n>', 'passes over the distinct training canvases (default: the fewest, with at most 55 000 canvases)')
    .option('--batch <n>', 'batch size', '64')
    .option('--lr <rate>', 'peak learning rate (Adam, cosine schedule)', '0.002')
    .option('--task-weights <cls,det,box>', 'λ, for every strategy', '1,1,1')
    .option('--seed <n>', 'seed for initialisation, data order and augmentation (the same for every model)', '0')
    .option('--threads <n>', 'ONNX Runtime threads', '2')
    .option('--val-count <n>', 'validation canvases per training run (the trainer’s epoch report)', '500')
    .option('--test-count <n>', 'FashionLoc test canvases for the table', '2000')
    .option('--overhead-steps <n>', 'timed train steps per strategy for the step-time comparison (0: skip)', '40')
    .option('--inference-runs <n>', 'timed batch-1 inferences per model', '50')
    .option('--fashion-mnist <dir>', 'folder of the Fashion-MNIST IDX files')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `\nWeighting strategies:\n${weightingHelp()}`)
    .action(async (opts) => {
      const int = (v: string, flag: string, min: number) => parseNumber(v, flag, { integer: true, min });
      const strategies = String(opts.strategies).split(',').map((s) => s.trim()).filter((s) => s !== '').map(parseWeightingSpec);
      if (strategies.length === 0) throw new Error('--strategies: give at least one strategy');
      const result = await benchMtl({
        spec: await resolveSpec(opts.arch),
        budget: int(opts.budget, '--budget', 1),
        strategies,
        epochs: opts.epochs ? int(opts.epochs, '--epochs', 1) : undefined,
        batch: int(opts.batch, '--batch', 1),
        lr: parseNumber(opts.lr, '--lr', { min: 0 }),
        taskWeights: parseTaskWeights(opts.taskWeights),
        seed: parseNumber(opts.seed, '--seed', { integer: true }),
        threads: int(opts.threads, '--threads', 1),
        valCount: int(opts.valCount, '--val-count', 1),
        testCount: int(opts.testCount, '--test-count', 1),
        overheadSteps: int(opts.overheadSteps, '--overhead-steps', 0),
        inferenceRuns: int(opts.inferenceRuns, '--inference-runs', 1),
        fashionMnist: opts.fashionMnist,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${formatMtlTable(result)}\n`);
    });
}
