/**
 * Fine-tuning in the browser: the model's exported train step runs in onnxruntime-web (wasm) on
 * the user's samples, one step per session run, driven from the manifest's roles (StepDriver).
 * The run's state is written to IndexedDB every few steps and when it stops, so it resumes after
 * a reload; the result downloads as a checkpoint or uploads as a new version.
 */
import type { Checkpoint } from '../../src/artifacts/checkpoint-codec';
import type { ServedManifest } from '../../src/artifacts/manifest-schema';
import { collate, type Sample } from '../../src/data/batch';
import type { Metrics } from '../../src/runtime/metrics';
import { batchIndices, checkpointOfState, initialState, planTrainStep, StepDriver, WeightsEvaluator, type StepResult, type StepState } from '../../src/runtime/step-driver';
import { DEFAULT_OPTIMIZER, manifestOptimizer } from '../../src/model/optimizers';
import { DEFAULTS } from '../../src/train/config';
import { fileUrl, getBytes, manifestOf } from './api';
import { decodeCheckpoint, sha256Hex } from './codec';
import { loadOrt, sessionOptions, type OrtWeb } from './ort';
import { saveRun, type RunConfig, type SavedRun } from './store';

export interface ModelFiles {
  manifest: ServedManifest;
  checkpoint: Checkpoint;
  checkpointSha256: string;
  trainStep: Uint8Array;
  eval: Uint8Array;
}

const loaded = new Map<string, Promise<Uint8Array>>();

/** A version's file, checked against the manifest's SHA-256 (a damaged download is an error, never a silent model). */
export function verifiedFile(manifest: ServedManifest, file: string): Promise<Uint8Array> {
  const key = `${manifest.model}/${manifest.version}/${file}/${manifest.files[file]?.sha256}`;
  let bytes = loaded.get(key);
  if (!bytes) {
    bytes = (async () => {
      const expected = manifest.files[file];
      if (!expected) throw new Error(`version ${manifest.version} of ${manifest.model} has no ${file}`);
      const data = await getBytes(fileUrl(manifest.model, manifest.version, file));
      if (data.length !== expected.bytes || sha256Hex(data) !== expected.sha256) throw new Error(`${file} of ${manifest.model} ${manifest.version}: checksum mismatch (damaged download)`);
      return data;
    })();
    bytes.catch(() => loaded.delete(key));
    loaded.set(key, bytes);
  }
  return bytes;
}

export async function loadModelFiles(model: string, version: number | 'latest'): Promise<ModelFiles> {
  const manifest = await manifestOf(model, version);
  if (!manifest.graphs.train_step || !manifest.graphs.eval) throw new Error(`${model} ${manifest.version}: the server offers no training graphs`);
  const [checkpointBytes, trainStep, evalBytes] = await Promise.all([
    verifiedFile(manifest, 'checkpoint.safetensors'),
    verifiedFile(manifest, manifest.graphs.train_step.file),
    verifiedFile(manifest, manifest.graphs.eval.file),
  ]);
  return {
    manifest,
    checkpoint: decodeCheckpoint(checkpointBytes, `${model} ${manifest.version} checkpoint`),
    checkpointSha256: manifest.files['checkpoint.safetensors'].sha256,
    trainStep,
    eval: evalBytes,
  };
}

export interface StepEvent extends StepResult {
  step: number;
  seconds: number;
}

export interface HeldOutEvaluation {
  samples: number;
  candidate: Metrics;
  serving: Metrics;
}

export class BrowserRun {
  private stopRequested = false;
  private lastSave = 0;
  readonly losses: SavedRun['losses'];

  private constructor(
    private readonly ort: OrtWeb,
    readonly files: ModelFiles,
    readonly config: RunConfig,
    readonly train: Sample[],
    readonly heldOut: Sample[],
    readonly dataName: string,
    private readonly driver: StepDriver,
    losses: SavedRun['losses'],
  ) {
    this.losses = losses;
  }

  /** A new run from the version's weights, or a saved one resumed. */
  static async create(files: ModelFiles, config: RunConfig, data: { train: Sample[]; heldOut: Sample[]; name: string }, saved?: SavedRun): Promise<BrowserRun> {
    const ort = await loadOrt('wasm');
    const graph = files.manifest.graphs.train_step;
    const state: StepState = saved ? new Map(saved.state) : initialState(planTrainStep(graph), files.checkpoint.params);
    const driver = await StepDriver.create(ort, files.trainStep, graph, state, sessionOptions('wasm'));
    return new BrowserRun(ort, files, config, data.train, data.heldOut, data.name, driver, saved?.losses ?? []);
  }

  get step(): number {
    return this.driver.step;
  }

  get state(): StepState {
    return this.driver.state;
  }

  stop(): void {
    this.stopRequested = true;
  }

  /** Steps until config.steps or stop(); saves now and then, and at the end. */
  async run(onStep: (event: StepEvent) => void): Promise<void> {
    this.stopRequested = false;
    const { batchSize, seed, lr } = this.config;
    const input = this.files.manifest.spec.input;
    try {
      while (this.step < this.config.steps && !this.stopRequested) {
        const indices = batchIndices(this.train.length, batchSize, seed, this.step);
        const batch = collate(Array.from(indices, (i) => this.train[i]), input);
        const started = performance.now();
        const result = await this.driver.run(batch, { values: { lr, weight_decay: DEFAULTS.weightDecay, clip_norm: DEFAULTS.clipNorm }, taskWeights: [1, 1, 1] });
        const step = this.step;
        if (!Number.isFinite(result.loss)) throw new Error(`the loss is ${result.loss} at step ${step}: lower the learning rate`);
        this.losses.push({ step, loss: result.loss, tasks: result.taskLosses });
        onStep({ ...result, step, seconds: (performance.now() - started) / 1000 });
        if (performance.now() - this.lastSave > 2000) await this.save();
        // Let the page draw between steps.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } finally {
      await this.save();
    }
  }

  async save(): Promise<void> {
    this.lastSave = performance.now();
    const { manifest, checkpointSha256 } = this.files;
    await saveRun({
      model: { name: manifest.model, version: manifest.version, checkpointSha256 },
      config: this.config,
      train: this.train,
      heldOut: this.heldOut,
      dataName: this.dataName,
      state: [...this.driver.state].map(([k, v]) => [k, Float32Array.from(v)]),
      steps: this.step,
      losses: this.losses,
      savedAt: new Date().toISOString(),
    });
  }

  /** The trained weights beside the version's own, on the held-out share (the same metrics as the server's gate). */
  async evaluate(): Promise<HeldOutEvaluation> {
    if (this.heldOut.length === 0) throw new Error('no held-out samples to evaluate on (raise the held-out share)');
    const graph = this.files.manifest.graphs.eval;
    const evaluator = await WeightsEvaluator.create(this.ort, this.files.eval, graph, sessionOptions('wasm'));
    try {
      const input = this.files.manifest.spec.input;
      const batches = [];
      for (let i = 0; i < this.heldOut.length; i += 64) batches.push(collate(this.heldOut.slice(i, i + 64), input));
      const classes = this.files.manifest.labels.length;
      const candidate = await evaluator.metrics(this.driver.state, batches, classes);
      const serving = await evaluator.metrics(this.files.checkpoint.params, batches, classes);
      return { samples: this.heldOut.length, candidate, serving };
    } finally {
      await evaluator.release();
    }
  }

  /** The weights as a Trident checkpoint (with the optimizer state and step, for resuming elsewhere). */
  checkpoint(): Checkpoint {
    const optimizer = DEFAULT_OPTIMIZER[manifestOptimizer(this.files.manifest)];
    return checkpointOfState(this.files.manifest.spec, optimizer, this.driver.plan, this.driver.state, {
      source: 'web app',
      model: `${this.files.manifest.model}/${this.files.manifest.version}`,
      steps: this.step,
      batchSize: this.config.batchSize,
      lr: this.config.lr,
      seed: this.config.seed,
    });
  }

  async release(): Promise<void> {
    await this.driver.release();
  }
}
