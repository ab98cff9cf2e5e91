/**
 * `trident finetune`: a client of a running server. Uploads an annotated image folder, then follows
 * the job's event stream with a progress bar until the job ends, and prints the decision.
 */
import { existsSync, openAsBlob, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { OPTIMIZERS } from '../../model/optimizers';
import { chooseWeighting, parseOptionPairs, WEIGHTING_NAMES } from '../../model/weighting/index';
import { describeChoices } from '../../base/choices';
import cliProgress from 'cli-progress';
import type { Decision, EpochReport, Evaluation, JobRecord, MetricsPair, StepProgress, TrainReady } from '../../finetune/record';
import { readSseEvents } from '../../serve/rest/sse';
import { collect, formatNumber, parseNumber, parseTaskWeights, table } from '../format';
import { annotationsFileOf } from '../../data/annotations';

export const API_KEY_ENV = 'TRIDENT_API_KEY';

interface FinetuneFlags {
  server: string;
  model: string;
  data: string;
  epochs?: string;
  steps?: string;
  batch?: string;
  lr?: string;
  optimizer?: string;
  taskWeights?: string;
  weighting?: string;
  weightingOption: string[];
  freezeTrunk?: boolean;
  valShare?: string;
  seed?: string;
  augment: boolean;
  force?: boolean;
  apiKey?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('finetune')
    .description('fine-tune a served model on an annotated image folder, through the server; follows the job until it ends')
    .requiredOption('--server <url>', 'the server, e.g. http://localhost:8000')
    .requiredOption('--model <name>', 'the served model to fine-tune')
    .requiredOption('--data <DIR/annotations.jsonl>', 'annotation file (or its folder); images are relative to it')
    .option('--epochs <n>', 'epochs over the training share')
    .option('--steps <n>', 'total steps instead of epochs')
    .option('--batch <n>', 'batch size')
    .option('--lr <rate>', 'peak learning rate')
    .option('--optimizer <name>', describeChoices(OPTIMIZERS))
    .option('--weighting <name>', `how the task losses are combined: ${WEIGHTING_NAMES.join(', ')} (see trident train --help)`)
    .option('--weighting-option <key=value>', 'an option of the weighting strategy (repeatable)', collect, [])
    .option('--task-weights <cls,det,box>', 'loss weights')
    .option('--freeze-trunk', 'train only the heads')
    .option('--val-share <share>', 'share of the samples held out for validation and the promotion gate')
    .option('--seed <n>', 'seed for the split, order and augmentation')
    .option('--no-augment', 'no flips or brightness jitter')
    .option('--force', 'promote the new version even if it is worse than the serving one')
    .option('--api-key <key>', `fine-tune API key (default: $${API_KEY_ENV})`)
    .option('--json', 'print the events as JSON lines instead of a progress bar')
    .action(async (flags: FinetuneFlags) => {
      const server = flags.server.replace(/\/+$/, '');
      const key = flags.apiKey ?? process.env[API_KEY_ENV];
      const upload = await uploadForm(flags);
      const job = await createJob(server, flags.model, upload, key);
      const report = flags.json ? jsonReporter() : barReporter(job);
      const ended = await followJob(server, job.id, key, report);
      if (ended.state !== 'succeeded') process.exitCode = 1;
    });
}

/** The hyper-parameters the user gave, under the server's names. */
function params(flags: FinetuneFlags): Record<string, unknown> {
  const int = (value: string, flag: string) => parseNumber(value, flag, { integer: true, min: 1 });
  const p: Record<string, unknown> = {};
  if (flags.epochs) p.epochs = int(flags.epochs, '--epochs');
  if (flags.steps) p.steps = int(flags.steps, '--steps');
  if (flags.batch) p.batch_size = int(flags.batch, '--batch');
  if (flags.lr) p.lr = parseNumber(flags.lr, '--lr', { min: 0 });
  if (flags.optimizer) p.optimizer = flags.optimizer;
  if (flags.taskWeights) p.task_weights = parseTaskWeights(flags.taskWeights);
  if (flags.weighting) {
    const weightingOptions = parseOptionPairs(flags.weightingOption);
    p.weighting = chooseWeighting(flags.weighting, weightingOptions).name;
    if (flags.weightingOption.length > 0) p.weighting_options = weightingOptions;
  } else if (flags.weightingOption.length > 0) {
    throw new Error('--weighting-option needs --weighting');
  }
  if (flags.freezeTrunk) p.freeze_trunk = true;
  if (flags.valShare) p.val_share = parseNumber(flags.valShare, '--val-share', { min: 0, max: 0.5 });
  if (flags.seed) p.seed = parseNumber(flags.seed, '--seed', { integer: true, min: 0 });
  if (!flags.augment) p.augment = false;
  return p;
}

/**
 * The annotation file and every image its lines name that lies inside its folder. Lines the
 * server will refuse (bad JSON, files outside the folder, missing files) are left for its message.
 */
async function uploadForm(flags: FinetuneFlags): Promise<{ form: FormData; files: number; bytes: number }> {
  const jsonl = annotationsFileOf(flags.data);
  const root = path.resolve(path.dirname(jsonl));
  const text = await fs.readFile(jsonl, 'utf8');
  const names = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    try {
      const file = (JSON.parse(line) as { file?: unknown }).file;
      if (typeof file !== 'string') continue;
      const full = path.resolve(root, file);
      const relative = path.relative(root, full);
      if (relative.startsWith('..') || path.isAbsolute(relative) || !existsSync(full)) continue;
      names.add(relative.split(path.sep).join('/'));
    } catch {
      continue;
    }
  }
  const form = new FormData();
  form.append('params', JSON.stringify(params(flags)));
  if (flags.force) form.append('force', 'true');
  const annotationsName = path.basename(jsonl);
  form.append('annotations', new Blob([text]), annotationsName);
  let bytes = Buffer.byteLength(text);
  for (const name of names) {
    const blob = await openAsBlob(path.join(root, name));
    bytes += blob.size;
    form.append('images', blob, name);
  }
  return { form, files: names.size + 1, bytes };
}

const authorization = (key: string | undefined): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {});

async function errorOf(response: Response): Promise<string> {
  const text = await response.text();
  try {
    return (JSON.parse(text) as { error?: string }).error ?? text;
  } catch {
    return text || response.statusText;
  }
}

async function createJob(server: string, model: string, upload: Awaited<ReturnType<typeof uploadForm>>, key: string | undefined): Promise<JobRecord> {
  process.stderr.write(`uploading ${upload.files} files (${(upload.bytes / 1024 / 1024).toFixed(1)} MiB) to ${server}\n`);
  const response = await fetch(`${server}/v2/models/${encodeURIComponent(model)}/finetune`, { method: 'POST', body: upload.form, headers: authorization(key) });
  if (!response.ok) throw new Error(`the server refused the job (${response.status}): ${await errorOf(response)}`);
  return (await response.json()) as JobRecord;
}

interface Reporter {
  snapshot(job: JobRecord): void;
  ready(ready: TrainReady): void;
  step(step: StepProgress): void;
  epoch(epoch: EpochReport): void;
  state(state: string): void;
  warning(message: string): void;
  end(job: JobRecord): void;
}

/**
 * Follows the job's events until `end`. Ctrl-C once asks the server to cancel the job (and keeps
 * following); twice stops following. A dropped stream is reopened a few times.
 */
async function followJob(server: string, id: string, key: string | undefined, report: Reporter): Promise<JobRecord> {
  let interrupts = 0;
  const onSignal = () => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    process.stderr.write(`\ncancelling job ${id} (Ctrl-C again to stop following it)\n`);
    void fetch(`${server}/v2/finetune/jobs/${id}/cancel`, { method: 'POST', headers: authorization(key) }).then(async (r) => {
      if (!r.ok) process.stderr.write(`could not cancel: ${await errorOf(r)}\n`);
    });
  };
  process.on('SIGINT', onSignal);
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      let response: Response;
      try {
        response = await fetch(`${server}/v2/finetune/jobs/${id}/events`, { headers: { accept: 'text/event-stream' } });
      } catch {
        continue;
      }
      if (!response.ok) throw new Error(`cannot follow job ${id} (${response.status}): ${await errorOf(response)}`);
      try {
        for await (const event of readSseEvents(response.body!)) {
          const data = JSON.parse(event.data) as never;
          switch (event.event) {
            case 'snapshot':
              report.snapshot(data);
              break;
            case 'ready':
              report.ready(data);
              break;
            case 'step':
              report.step(data);
              break;
            case 'epoch':
              report.epoch(data);
              break;
            case 'state':
              report.state((data as { state: string }).state);
              break;
            case 'warning':
              report.warning((data as { message: string }).message);
              break;
            case 'end':
              report.end(data);
              return data as JobRecord;
          }
        }
      } catch {
        // The stream broke (server restart, network): reopen it.
      }
    }
    throw new Error(`lost the event stream of job ${id}; see ${server}/v2/finetune/jobs/${id}`);
  } finally {
    process.off('SIGINT', onSignal);
  }
}

function jsonReporter(): Reporter {
  const out = (event: string, data: unknown) => process.stdout.write(`${JSON.stringify({ event, ...(data as object) })}\n`);
  return {
    snapshot: (job) => out('snapshot', { job }),
    ready: (ready) => out('ready', ready),
    step: (step) => out('step', step),
    epoch: (epoch) => out('epoch', epoch),
    state: (state) => out('state', { state }),
    warning: (message) => out('warning', { message }),
    end: (job) => out('end', { job }),
  };
}

function barReporter(job: JobRecord): Reporter {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const showBar = process.stderr.isTTY;
  let bar: cliProgress.SingleBar | undefined;
  let total = job.progress.totalSteps;
  let secondsPerStep: number | undefined;
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  out(`job ${job.id}: fine-tuning ${job.model} version ${job.parentVersion} on ${job.data.samples} samples (${job.state})`);
  return {
    snapshot: () => {},
    ready: (ready) => {
      total = ready.totalSteps;
      out(`training on ${ready.provider}: ${ready.trainSamples} training / ${ready.valSamples} held-out samples, ${ready.totalSteps} steps`);
    },
    step: (step) => {
      if (!showBar) return;
      // Per-step rates jitter with small batches; show a moving average of the time per step.
      const seconds = job.params.batchSize / Math.max(step.imagesPerSecond, 1e-9);
      secondsPerStep = secondsPerStep === undefined ? seconds : 0.8 * secondsPerStep + 0.2 * seconds;
      const payload = {
        epoch: step.epoch,
        speed: (job.params.batchSize / secondsPerStep).toFixed(0),
        loss: step.loss.toFixed(3),
        cls: step.losses.classification.toFixed(3),
        det: step.losses.objectness.toFixed(3),
        box: step.losses.box.toFixed(3),
      };
      if (!bar) {
        bar = new cliProgress.SingleBar(
          { format: 'step {value}/{total} [{bar}] epoch {epoch} | {speed} img/s | loss {loss} (cls {cls} det {det} box {box}) | ETA {eta_formatted}', stream: process.stderr },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, step.step, payload);
      } else bar.update(step.step, payload);
    },
    epoch: (epoch) => {
      if (showBar) return;
      out(`epoch ${epoch.epoch}: train loss ${formatNumber(epoch.trainLoss)}, held-out loss ${formatNumber(epoch.valLoss)}, detection correct ${formatNumber(epoch.metrics.detectionCorrect)}`);
    },
    state: (state) => {
      if (state === 'evaluating' || state === 'promoting') {
        stopBar();
        out(`${state}…`);
      }
    },
    warning: (message) => process.stderr.write(`warning: ${message}\n`),
    end: (ended) => {
      stopBar();
      for (const line of summary(ended)) out(line);
    },
  };
}

const COMPARED: [keyof MetricsPair['candidate'], string][] = [
  ['classAccuracy', 'class accuracy'],
  ['objectnessF1', 'objectness F1'],
  ['objectnessAP', 'objectness AP'],
  ['boxMeanIoU', 'box mean IoU'],
  ['boxIoUAbove50', 'box IoU ≥ 0.5'],
  ['detectionCorrect', 'detection correct'],
];

/** The lines printed when the job ends: outcome, decision, and serving vs candidate per evaluation set. */
export function summary(job: JobRecord): string[] {
  const lines: string[] = [];
  if (job.state !== 'succeeded') {
    lines.push(`job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}`);
    return lines;
  }
  const decision = job.decision as Decision;
  lines.push(
    decision.promoted
      ? `version ${decision.version} of ${job.model} is now latest${decision.forced ? ' (forced)' : ''}`
      : `version ${decision.version} of ${job.model} was written but not promoted; latest stays ${decision.latest}`,
  );
  lines.push(`decision: ${decision.reason}`);
  const evaluation = job.evaluation as Evaluation;
  for (const pair of [evaluation.heldOut, ...(evaluation.reference ? [evaluation.reference] : [])]) {
    const rows = COMPARED.map(([key, label]): (string | number)[] => [
      `${label}${key === evaluation.metric ? ' *' : ''}`,
      pair.serving[key] as number,
      pair.candidate[key] as number,
    ]);
    lines.push('', `${pair.name} (${pair.samples} samples)`, table(['metric', `serving v${job.parentVersion}`, `new v${decision.version}`], rows));
  }
  return lines;
}
