import path from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { loadCheckpoint, specDifference } from '../../artifacts/checkpoint';
import { checkpointFileOf, FILES } from '../../artifacts/export';
import { OPTIMIZERS, parseOptimizer } from '../../model/optimizers';
import { chooseName, describeChoices } from '../../base/choices';
import { LR_SCHEDULES } from '../../train/schedules';
import { MONITORS } from '../../train/monitors';
import type { ModelSpec } from '../../model/spec';
import type { Metrics } from '../../runtime/metrics';
import { deviceHelp, parseDevice } from '../../runtime/execution-providers';
import { DEFAULTS, type DataConfig, type TrainConfig } from '../../train/config';
import { TrainJob } from '../../train/job';
import { parseTasks, TASKS } from '../../model/tasks';
import { chooseWeighting, parseOptionPairs, weightingHelp, WEIGHTING_NAMES } from '../../model/weighting/index';
import { collect, formatNumber, parseNumber, parseTaskWeights, table } from '../format';
import { resolveSpec } from './export';
import { annotationsFileOf } from '../../data/annotations';

export function metricsRows(m: Metrics): [string, string | number][] {
  return [
    ['class accuracy', m.classAccuracy],
    ['objectness precision', m.objectnessPrecision],
    ['objectness recall', m.objectnessRecall],
    ['objectness F1', m.objectnessF1],
    ['objectness AP', m.objectnessAP],
    ['box mean IoU', m.boxMeanIoU],
    ['box IoU ≥ 0.5', m.boxIoUAbove50],
    ['detection correct', m.detectionCorrect],
  ];
}

export function dataConfig(data: string, opts: { fashionMnist?: string; trainCount?: string; valCount?: string; valShare: string; skipBad?: boolean; p?: string }): DataConfig {
  if (data === 'fashion-mnist' || data === 'fashionloc') {
    return {
      kind: 'fashionloc',
      dir: opts.fashionMnist,
      trainCount: opts.trainCount ? parseNumber(opts.trainCount, '--train-count', { integer: true, min: 1 }) : undefined,
      valCount: opts.valCount ? parseNumber(opts.valCount, '--val-count', { integer: true, min: 1 }) : undefined,
      p: opts.p ? parseNumber(opts.p, '--p', { min: 0, max: 1 }) : undefined,
    };
  }
  const file = annotationsFileOf(data);
  return { kind: 'annotations', file, skipBad: opts.skipBad, valShare: parseNumber(opts.valShare, '--val-share', { min: 0, max: 0.9 }) };
}

async function chooseSpec(opts: { arch?: string; from?: string; resume?: boolean; out: string }): Promise<ModelSpec> {
  const source = opts.resume ? path.join(opts.out, FILES.checkpoint) : opts.from ? checkpointFileOf(opts.from) : undefined;
  const existing = source ? (await loadCheckpoint(source)).spec : undefined;
  if (!opts.arch) {
    if (!existing) throw new Error('give --arch (or --from / --resume to take the architecture from a checkpoint)');
    return existing;
  }
  const spec = await resolveSpec(opts.arch);
  if (existing) {
    const diff = specDifference(spec, existing);
    if (diff) throw new Error(`${source} holds another architecture than --arch ${opts.arch}: ${diff}`);
  }
  return spec;
}

export function register(program: Command): void {
  program
    .command('train')
    .description('train (or fine-tune) a multi-task model; writes a servable model folder')
    .option('--arch <name|spec.json>', 'architecture: fashionloc, seed, tiny or a JSON spec')
    .requiredOption('--data <source>', 'fashion-mnist (FashionLoc rendered from it) or DIR/annotations.jsonl')
    .requiredOption('--out <dir>', 'output model folder, e.g. models/NAME/VERSION')
    .option('--epochs <n>', 'epochs', String(DEFAULTS.epochs))
    .option('--batch <n>', 'batch size', String(DEFAULTS.batchSize))
    .option('--lr <rate>', 'peak learning rate', String(DEFAULTS.lr))
    .option('--schedule <kind>', `learning-rate schedule: ${describeChoices(LR_SCHEDULES)}`, DEFAULTS.schedule)
    .option('--warmup <steps>', 'linear learning-rate warmup over this many steps before the schedule', String(DEFAULTS.warmupSteps))
    .option('--optimizer <name>', describeChoices(OPTIMIZERS), DEFAULTS.optimizer)
    .option('--weight-decay <w>', 'weight decay (L2 for sgd/adam, decoupled for adamw)', String(DEFAULTS.weightDecay))
    .option('--clip-norm <n>', 'clip gradients by global norm (0: off)', String(DEFAULTS.clipNorm))
    .option('--task-weights <cls,det,box>', 'loss weights λ', DEFAULTS.taskWeights.join(','))
    .option('--weighting <name>', `how the task losses are combined: ${WEIGHTING_NAMES.join(', ')} (listed below)`, DEFAULTS.weighting.name)
    .option('--weighting-option <key=value>', 'an option of the weighting strategy (repeatable)', collect, [])
    .option('--tasks <list>', `the tasks to train: all, or a comma list of ${TASKS.join(', ')} (the others' heads stay as they are)`, 'all')
    .option('--label-smoothing <eps>', 'label smoothing of the class loss', String(DEFAULTS.labelSmoothing))
    .option('--device <name>', deviceHelp(), DEFAULTS.device)
    .option('--threads <n>', 'ONNX Runtime threads (0: all cores)', String(DEFAULTS.threads))
    .option('--seed <n>', 'seed for initialisation, data order and augmentation', String(DEFAULTS.seed))
    .option('--resume', 'continue from the checkpoint in --out')
    .option('--from <model>', 'fine-tune from a model folder or checkpoint')
    .option('--freeze-trunk', 'train only the heads')
    .option('--patience <n>', 'early stopping: epochs without improvement (0: off)', '0')
    .option('--monitor <metric>', `what early stopping watches: ${describeChoices(MONITORS)}`, DEFAULTS.monitor)
    .option('--max-steps <n>', 'stop after this many steps (0: no limit)', '0')
    .option('--no-augment', 'no flips, brightness or geometric jitter')
    .option('--translate <fraction>', 'random shift up to this fraction of the image size (boxes move along)', String(DEFAULTS.translate))
    .option('--scale-jitter <fraction>', 'random scale change up to ± this fraction (boxes scale along)', String(DEFAULTS.scaleJitter))
    .option('--train-count <n>', 'FashionLoc training samples per epoch (default: all 55000)')
    .option('--val-count <n>', 'FashionLoc validation samples', '2000')
    .option('--p <prob>', 'FashionLoc probability of an item', '0.8')
    .option('--fashion-mnist <dir>', 'folder of the Fashion-MNIST IDX files')
    .option('--val-share <share>', 'share of user data held out for validation', '0.2')
    .option('--skip-bad', 'skip bad annotation lines with a warning instead of failing')
    .option('--json', 'print machine-readable progress lines instead of a progress bar')
    .addHelpText('after', `\nWeighting strategies (--weighting NAME --weighting-option key=value):\n${weightingHelp()}`)
    .action(async (opts) => {
      const spec = await chooseSpec(opts);
      const config: TrainConfig = {
        ...DEFAULTS,
        spec,
        data: dataConfig(opts.data, opts),
        outDir: opts.out,
        epochs: parseNumber(opts.epochs, '--epochs', { integer: true, min: 1 }),
        batchSize: parseNumber(opts.batch, '--batch', { integer: true, min: 1 }),
        lr: parseNumber(opts.lr, '--lr', { min: 0 }),
        schedule: chooseName(LR_SCHEDULES, opts.schedule, 'learning-rate schedule (--schedule)'),
        warmupSteps: parseNumber(opts.warmup, '--warmup', { integer: true, min: 0 }),
        optimizer: parseOptimizer(opts.optimizer),
        weightDecay: parseNumber(opts.weightDecay, '--weight-decay', { min: 0 }),
        clipNorm: parseNumber(opts.clipNorm, '--clip-norm', { min: 0 }),
        taskWeights: parseTaskWeights(opts.taskWeights),
        weighting: chooseWeighting(opts.weighting, parseOptionPairs(opts.weightingOption)),
        tasks: parseTasks(opts.tasks),
        labelSmoothing: parseNumber(opts.labelSmoothing, '--label-smoothing', { min: 0, max: 1 }),
        seed: parseNumber(opts.seed, '--seed', { integer: true }),
        device: parseDevice(opts.device),
        threads: parseNumber(opts.threads, '--threads', { integer: true, min: 0 }),
        augment: opts.augment,
        translate: parseNumber(opts.translate, '--translate', { min: 0, max: 0.5 }),
        scaleJitter: parseNumber(opts.scaleJitter, '--scale-jitter', { min: 0, max: 0.5 }),
        resume: !!opts.resume,
        from: opts.from,
        freezeTrunk: !!opts.freezeTrunk,
        patience: parseNumber(opts.patience, '--patience', { integer: true, min: 0 }),
        monitor: chooseName(MONITORS, opts.monitor, 'early-stopping monitor (--monitor)'),
        maxSteps: parseNumber(opts.maxSteps, '--max-steps', { integer: true, min: 0 }),
        name: path.basename(path.dirname(path.resolve(opts.out))),
      };
      await runTraining(config, !!opts.json);
    });
}

export async function runTraining(config: TrainConfig, json: boolean): Promise<void> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const emit = (event: Record<string, unknown>) => out(JSON.stringify(event));
  const job = await TrainJob.start(config);
  let bar: cliProgress.SingleBar | undefined;
  const showBar = !json && process.stderr.isTTY;
  let stepsPerEpoch = 0;
  let signals = 0;
  const onSignal = () => {
    signals += 1;
    if (signals === 1) {
      process.stderr.write('\nstopping: finishing the current step and writing a checkpoint (Ctrl-C again to abort)\n');
      job.stop();
    } else void job.kill().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  job.on('warning', (w) => (json ? emit({ event: 'warning', message: w }) : process.stderr.write(`warning: ${w}\n`)));
  job.on('ready', (m) => {
    stepsPerEpoch = m.stepsPerEpoch;
    if (json) emit({ event: 'ready', ...m });
    else out(`training ${config.spec.name} on ${m.provider}: ${m.trainSamples} training / ${m.valSamples} validation samples, ${m.stepsPerEpoch} steps per epoch${m.resumed ? `, resuming at epoch ${m.epoch} step ${m.index + 1}` : ''}`);
  });
  let epochBarFor = -1;
  job.on('step', (m) => {
    if (json) return emit({ event: 'step', ...m });
    if (!showBar) return;
    if (epochBarFor !== m.epoch) {
      bar?.stop();
      bar = new cliProgress.SingleBar(
        { format: `epoch ${m.epoch}/${m.epochs} [{bar}] {value}/{total} | {speed} img/s | ETA {eta_formatted} | loss {loss} (cls {cls} det {det} box {box})`, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      );
      bar.start(stepsPerEpoch, m.index);
      epochBarFor = m.epoch;
    }
    bar!.update(m.index + 1, {
      speed: m.imagesPerSecond.toFixed(0),
      loss: m.loss.toFixed(3),
      cls: m.losses.classification.toFixed(3),
      det: m.losses.objectness.toFixed(3),
      box: m.losses.box.toFixed(3),
    });
  });
  job.on('epoch', (epoch) => {
    if (json) return emit({ event: 'epoch', ...epoch });
    bar?.stop();
    epochBarFor = -1;
    out(`\nepoch ${epoch.epoch}: train loss ${formatNumber(epoch.trainLoss)}, validation loss ${formatNumber(epoch.valLoss)} (${epoch.seconds.toFixed(1)} s)`);
    out(table(['validation', 'value'], metricsRows(epoch.metrics)));
  });
  job.on('checkpoint', (m) => json && emit({ event: 'checkpoint', ...m }));
  try {
    const done = await job.done;
    bar?.stop();
    if (json) emit({ event: 'done', reason: done.reason, outDir: done.outDir });
    else if (done.reason === 'stopped') out(`stopped; checkpoint written to ${path.join(done.outDir, FILES.checkpoint)} (continue with --resume)`);
    else out(`done (${done.reason.replace('_', ' ')}); model written to ${done.outDir}`);
    if (done.reason === 'stopped') process.exitCode = 130;
  } finally {
    bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
