/**
 * On the device: inference with onnxruntime-web beside the server's answer, and fine-tuning on
 * the user's own images, which never leave the machine; the run survives a reload (IndexedDB),
 * downloads as a checkpoint and uploads, with a key, as a new version.
 */
import { splitSamples } from '../../src/data/batch';
import { boxToPixels, decodePrediction, type Prediction } from '../../src/model/predictions';
import type { InferenceSession } from 'onnxruntime-common';
import { getJson, keyHeader, manifestOf, predictOnServer, savedKey, type ServerPrediction } from './api';
import { LineChart } from './chart';
import { encodeCheckpoint, sha256Hex } from './codec';
import { loadUserData } from './data';
import { dropZone, fmt, guarded, h, status } from './dom';
import { verdictBox } from './finetune';
import { decodeImage, drawWithBox, inputTensor } from './images';
import { bestInferenceBackend, loadOrt, sessionOptions, threadCount, type Backend } from './ort';
import { keyField, modelPicker, type ModelPicker } from './pickers';
import { topKList } from './predict';
import { clearRun, loadRun, type RunConfig, type SavedRun } from './store';
import { BrowserRun, loadModelFiles, verifiedFile, type HeldOutEvaluation } from './trainer';

const sessions = new Map<string, Promise<InferenceSession>>();

async function inferenceSession(model: string, version: string | undefined, backend: Backend) {
  const manifest = await manifestOf(model, version ? Number(version) : 'latest');
  const key = `${manifest.model}/${manifest.version}/${backend}`;
  let session = sessions.get(key);
  if (!session) {
    session = (async () => {
      const ort = await loadOrt(backend);
      const graph = manifest.graphs.infer;
      // A model folder's infer.onnx may keep its weights in the checkpoint (ONNX external data).
      const externalData = graph.weights ? [{ path: graph.weights, data: await verifiedFile(manifest, graph.weights) }] : undefined;
      return ort.InferenceSession.create(await verifiedFile(manifest, graph.file), { ...sessionOptions(backend), ...(externalData ? { externalData } : {}) });
    })();
    session.catch(() => sessions.delete(key));
    sessions.set(key, session);
  }
  return { manifest, session: await session };
}

interface RawHeads {
  classProbs: number[];
  objectness: number;
  box: number[];
}

const rawOfServer = (p: ServerPrediction): RawHeads => {
  const probs = new Array<number>(p.class.top_k.length);
  for (const t of p.class.top_k) probs[t.index] = t.score;
  const b = p.box.normalised;
  return { classProbs: probs, objectness: p.object.score, box: [b.x1, b.y1, b.x2, b.y2] };
};

function headsColumn(title: string, prediction: Prediction, raw: RawHeads, decoded: Awaited<ReturnType<typeof decodeImage>>): HTMLElement {
  const box = boxToPixels([prediction.box.x1, prediction.box.y1, prediction.box.x2, prediction.box.y2], decoded);
  return h(
    'div',
    { 'data-heads': JSON.stringify(raw) },
    h('h3', {}, title),
    drawWithBox(decoded, prediction.object.present ? box : undefined, prediction.object.present ? prediction.class.label : undefined),
    h('p', {}, prediction.object.present ? `${prediction.class.label} ${fmt(prediction.class.score, 2)}` : 'no object', h('span', { class: 'muted' }, ` · objectness ${fmt(prediction.object.score)}`)),
    topKList(prediction.class.topK),
  );
}

function inferencePart(picker: ModelPicker): HTMLElement {
  const results = h('div', { id: 'device-infer-results' });
  const backendText = h('p', { class: 'muted', id: 'device-backend' }, 'onnxruntime-web loads on first use.');
  const run = (files: File[]) =>
    guarded(async () => {
      const backend = await bestInferenceBackend();
      status(`loading the model into onnxruntime-web (${backend})…`);
      const { manifest, session } = await inferenceSession(picker.model(), picker.version(), backend);
      backendText.textContent = `onnxruntime-web ${__ORT_VERSION__}, ${backend}${backend === 'wasm' ? `, ${threadCount()} thread(s)` : ''}, model ${manifest.model} v${manifest.version}; cross-origin isolated: ${crossOriginIsolated}`;
      const labels = manifest.labels;
      for (const file of files) {
        const decoded = await decodeImage(file);
        const ort = await loadOrt(backend);
        const input = manifest.spec.input;
        const started = performance.now();
        const outputs = await session.run({ [manifest.input.name]: new ort.Tensor('float32', inputTensor(decoded, input), [1, input.channels, input.height, input.width]) });
        const ms = performance.now() - started;
        const role = (r: string) => outputs[manifest.graphs.infer.outputs.find((o) => o.role === r)!.name].data as Float32Array;
        const probs = role('class_probs');
        const raw: RawHeads = { classProbs: Array.from(probs), objectness: role('objectness')[0], box: Array.from(role('box')) };
        const local = decodePrediction(probs, raw.objectness, raw.box, labels, { topK: 3, objectThreshold: 0.5 });
        const server = await predictOnServer(manifest.model, String(manifest.version), file, labels.length);
        const serverRaw = rawOfServer(server);
        const serverPrediction = decodePrediction(serverRaw.classProbs, serverRaw.objectness, serverRaw.box, labels, { topK: 3, objectThreshold: server.object.threshold });
        const diff = Math.max(...raw.classProbs.map((p, i) => Math.abs(p - serverRaw.classProbs[i])), Math.abs(raw.objectness - serverRaw.objectness), ...raw.box.map((b, i) => Math.abs(b - serverRaw.box[i])));
        results.prepend(
          h(
            'article',
            { class: 'card', 'data-max-difference': String(diff) },
            h('div', { class: 'split' }, headsColumn(`In this browser (${ms.toFixed(0)} ms)`, local, raw, decoded), headsColumn('On the server', serverPrediction, serverRaw, decoded)),
            h('p', { class: 'muted' }, `${file.name}: largest difference between the two ${diff.toExponential(2)}`),
          ),
        );
      }
      status(`${files.length} image(s) run in the browser and on the server`);
    });
  return h('div', {}, h('h2', {}, 'Inference in this browser'), backendText, dropZone('device-infer-files', 'Drop images to run them here and on the server', 'image/*', run), results);
}

function trainingPart(picker: ModelPicker): HTMLElement {
  const number = (id: string, label: string, value: string, attrs: Record<string, string | number> = {}) => {
    const input = h('input', { id, type: 'number', value, step: 'any', ...attrs });
    return { input, element: h('label', {}, label, input) };
  };
  const steps = number('device-steps', 'Steps', '50', { min: 1, step: 1 });
  const batch = number('device-batch', 'Batch size', '16', { min: 1, step: 1 });
  const lr = number('device-lr', 'Learning rate', '0.001', { min: 0 });
  const share = number('device-share', 'Held-out share', '0.2', { min: 0.01, max: 0.5 });
  const seed = number('device-seed', 'Seed', '0', { min: 0, step: 1 });
  const dataText = h('p', { class: 'muted', id: 'device-data' }, 'No data yet: your images stay on this machine.');
  const trainButton = h('button', { class: 'action', type: 'button', id: 'device-train', disabled: true }, 'Train');
  const pauseButton = h('button', { class: 'secondary', type: 'button', id: 'device-pause', disabled: true }, 'Pause');
  const evalButton = h('button', { class: 'secondary', type: 'button', id: 'device-evaluate', disabled: true }, 'Evaluate');
  const downloadButton = h('button', { class: 'secondary', type: 'button', id: 'device-download', disabled: true }, 'Download checkpoint');
  const uploadButton = h('button', { class: 'secondary', type: 'button', id: 'device-upload', disabled: true }, 'Upload as new version');
  const force = h('input', { type: 'checkbox', id: 'device-force' });
  const progress = h('p', { id: 'device-progress', 'aria-live': 'polite', 'data-step': '0' });
  const saved = h('div', { id: 'device-saved' });
  const evaluation = h('div', { id: 'device-evaluation' });
  const verdict = h('div', { id: 'device-verdict' });
  const chart = new LineChart('training loss in this browser');
  let data: { train: SavedRun['train']; heldOut: SavedRun['heldOut']; name: string } | undefined;
  let run: BrowserRun | undefined;
  let heldOut: HeldOutEvaluation | undefined;

  const config = (): RunConfig => ({ steps: Number(steps.input.value), batchSize: Number(batch.input.value), lr: Number(lr.input.value), heldOutShare: Number(share.input.value), seed: Number(seed.input.value) });
  const setBusy = (busy: boolean) => {
    trainButton.disabled = busy || !data;
    pauseButton.disabled = !busy;
    for (const b of [evalButton, downloadButton, uploadButton]) b.disabled = busy || !run || run.step === 0;
  };
  const drawLosses = () => {
    chart.reset();
    for (const l of run?.losses ?? []) {
      chart.add('loss', '#2457c5', l.step, l.loss);
      ['classification', 'objectness', 'box'].forEach((task, i) => chart.add(task, ['#b3261e', '#1d7a3a', '#8a5cd0'][i], l.step, l.tasks[i]));
    }
    chart.draw();
  };
  const showProgress = () => {
    const last = run?.losses.at(-1);
    progress.dataset.step = String(run?.step ?? 0);
    progress.dataset.losses = JSON.stringify(run?.losses.map((l) => l.loss) ?? []);
    progress.textContent = run ? `step ${run.step}/${run.config.steps}${last ? ` · loss ${fmt(last.loss, 4)} (first ${fmt(run.losses[0].loss, 4)})` : ''}` : '';
  };

  const train = () =>
    guarded(async () => {
      const cfg = config();
      if (!run) {
        if (!data) throw new Error('pick your data first');
        status('loading the model and its training graph…');
        const files = await loadModelFiles(picker.model(), picker.version() ? Number(picker.version()) : 'latest');
        run = await BrowserRun.create(files, cfg, data);
      } else {
        run.config.steps = cfg.steps;
      }
      setBusy(true);
      status(`training in this browser (wasm, ${threadCount()} thread(s))…`);
      let seconds = 0;
      try {
        await run.run((event) => {
          seconds += event.seconds;
          showProgress();
          drawLosses();
        });
      } finally {
        setBusy(false);
        showProgress();
        progress.dataset.state = run.step >= run.config.steps ? 'done' : 'paused';
      }
      status(`trained to step ${run.step} (${seconds.toFixed(1)} s in steps); saved in this browser`);
      await showSaved();
    });

  const showSaved = async () => {
    const previous = await loadRun().catch(() => undefined);
    saved.replaceChildren();
    if (!previous || run) return;
    saved.append(
      h(
        'div',
        { class: 'verdict' },
        h('strong', {}, 'A saved run: '),
        `${previous.model.name} v${previous.model.version}, step ${previous.steps} of ${previous.config.steps}, ${previous.train.length} training samples (${previous.dataName}), saved ${new Date(previous.savedAt).toLocaleString()}. `,
        h('button', { class: 'action', type: 'button', id: 'device-resume', onclick: () => void resume(previous) }, 'Resume'),
        ' ',
        h('button', { class: 'secondary', type: 'button', id: 'device-discard', onclick: () => void guarded(async () => (await clearRun(), showSaved())) }, 'Discard'),
      ),
    );
  };

  const resume = (previous: SavedRun) =>
    guarded(async () => {
      status('resuming the saved run…');
      const files = await loadModelFiles(previous.model.name, previous.model.version);
      if (files.checkpointSha256 !== previous.model.checkpointSha256) throw new Error('the saved run started from weights the server no longer has under that version');
      data = { train: previous.train, heldOut: previous.heldOut, name: previous.dataName };
      run = await BrowserRun.create(files, previous.config, data, previous);
      await picker.select(previous.model.name, previous.model.version);
      for (const [input, value] of [[steps, previous.config.steps], [batch, previous.config.batchSize], [lr, previous.config.lr], [share, previous.config.heldOutShare], [seed, previous.config.seed]] as const) input.input.value = String(value);
      dataText.textContent = `${data.train.length} training and ${data.heldOut.length} held-out samples (${data.name}), from the saved run`;
      saved.replaceChildren();
      showProgress();
      drawLosses();
      setBusy(false);
      status(`resumed at step ${run.step}`);
    });

  const pick = (files: File[]) =>
    guarded(async () => {
      const manifest = await manifestOf(picker.model(), picker.version() ? Number(picker.version()) : 'latest');
      const loaded = await loadUserData(files, manifest.labels, manifest.spec.input, (done, total) => status(`reading images ${done}/${total}…`));
      const { train: trainSet, val } = splitSamples(loaded.samples, Number(share.input.value), Number(seed.input.value));
      data = { train: trainSet, heldOut: val, name: loaded.name };
      await run?.release();
      run = undefined;
      heldOut = undefined;
      dataText.textContent = `${trainSet.length} training and ${val.length} held-out samples (${loaded.withObject} with an object) from ${loaded.name}`;
      status('data ready; nothing was uploaded');
      saved.replaceChildren();
      setBusy(false);
    });

  pauseButton.addEventListener('click', () => run?.stop());
  trainButton.addEventListener('click', () => void train());
  evalButton.addEventListener('click', () =>
    guarded(async () => {
      status('evaluating on the held-out share…');
      heldOut = await run!.evaluate();
      const rows = (['classAccuracy', 'objectnessF1', 'boxMeanIoU', 'detectionCorrect'] as const).map((m) => h('tr', {}, h('td', {}, m), h('td', {}, fmt(heldOut!.candidate[m])), h('td', {}, fmt(heldOut!.serving[m]))));
      evaluation.replaceChildren(
        h('table', { 'data-evaluation': JSON.stringify(heldOut) }, h('thead', {}, h('tr', {}, h('th', {}, `Held-out (${heldOut.samples})`), h('th', {}, 'trained here'), h('th', {}, 'serving'))), h('tbody', {}, ...rows)),
      );
      status('evaluated');
    }),
  );
  downloadButton.addEventListener('click', () =>
    guarded(async () => {
      const bytes = encodeCheckpoint(run!.checkpoint());
      const link = h('a', { href: URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' })), download: `${run!.files.manifest.model}-browser-step${run!.step}.safetensors` });
      document.body.append(link);
      link.click();
      link.remove();
      status(`checkpoint of ${(bytes.length / 1e6).toFixed(1)} MB downloaded`);
    }),
  );
  uploadButton.addEventListener('click', () =>
    guarded(async () => {
      heldOut ??= await run!.evaluate();
      const bytes = encodeCheckpoint(run!.checkpoint());
      const form = new FormData();
      form.append('sha256', sha256Hex(bytes));
      form.append('held_out', JSON.stringify(heldOut));
      form.append('force', String(force.checked));
      form.append('checkpoint', new Blob([bytes as BlobPart], { type: 'application/octet-stream' }), 'checkpoint.safetensors');
      status('uploading the weights; the server checks and evaluates them…');
      const result = await getJson<{ version: number; evaluation: Parameters<typeof verdictBox>[0]; decision: Parameters<typeof verdictBox>[1] }>(`/v2/models/${encodeURIComponent(run!.files.manifest.model)}/weights`, {
        method: 'POST',
        headers: keyHeader(savedKey.get()),
        body: form,
      });
      verdict.replaceChildren(verdictBox(result.evaluation, result.decision));
      status(`version ${result.version} written`);
    }),
  );

  void showSaved();
  chart.draw();
  return h(
    'div',
    {},
    h('h2', {}, 'Fine-tune in this browser'),
    h('p', { class: 'muted' }, "The model's exported train step runs here, on your images; they never leave this machine. The run is saved in this browser and resumes after a reload."),
    saved,
    h('div', { class: 'row' }, steps.element, batch.element, lr.element, share.element, seed.element),
    dropZone('device-train-files', 'Drop your images + annotations.jsonl, or a .zip', '.jsonl,.zip,image/*', pick),
    dataText,
    h('div', { class: 'row' }, trainButton, pauseButton, evalButton, downloadButton),
    progress,
    chart.canvas,
    evaluation,
    h('div', { class: 'row' }, keyField('device-key', savedKey.get, savedKey.set), h('label', {}, 'Promote even if worse', force), uploadButton),
    verdict,
  );
}

export async function initDevice(root: HTMLElement): Promise<void> {
  const picker = modelPicker('device');
  root.append(
    h('h2', {}, 'On the device'),
    h('p', { class: 'muted' }, `onnxruntime-web runs the same ONNX files as the server. Cross-origin isolated: ${crossOriginIsolated ? 'yes (threads on)' : 'no (one thread)'}.`),
    picker.element,
    inferencePart(picker),
    trainingPart(picker),
  );
  await picker.refresh();
}
